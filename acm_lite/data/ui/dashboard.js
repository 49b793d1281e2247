// acm-lite dashboard: polls the JSON answer its page names (data-api: /ui/api/fleet, or the
// cluster's or the object's under /ui/api/) and updates the page in place: each sync's fields and
// errors, a cluster's object rows and the preview of a commit not applied yet, an object's fields.
// Values are set with textContent and setAttribute only, never parsed as HTML.
"use strict";
(function () {
  var body = document.body;
  var seconds = parseFloat(body.getAttribute("data-poll") || "0");
  var api = body.getAttribute("data-api") || "";
  if (!(seconds > 0) || api.indexOf("/ui/api/") !== 0) {
    return;
  }
  var fields = ["state", "reachable", "commit", "synced", "health", "errorCount"];
  var columns = ["kind", "namespace", "name", "status", "commit", "drift"];

  function text(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function element(tag, content, className) {
    var node = document.createElement(tag);
    if (content !== undefined) {
      node.textContent = text(content);
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  function list(value) {
    return Array.isArray(value) ? value : [];
  }

  function fillRow(row, object) {
    row.setAttribute("data-object", text(object.id));
    row.setAttribute("data-status", text(object.status));
    for (var c = 0; c < columns.length; c++) {
      var cell = row.querySelector('td[data-col="' + columns[c] + '"]');
      if (!cell) {
        continue;
      }
      if (columns[c] !== "name") {
        cell.textContent = text(object[columns[c]]);
        continue;
      }
      var link = cell.querySelector("a");
      if (!link) {
        clear(cell);
        link = cell.appendChild(document.createElement("a"));
      }
      link.textContent = text(object.name);
      var href = text(object.href);
      if (href.indexOf("/ui/object/") === 0) {
        link.setAttribute("href", href);
      } else {
        link.removeAttribute("href");
      }
    }
  }

  function newRow() {
    var row = document.createElement("tr");
    for (var c = 0; c < columns.length; c++) {
      var cell = row.appendChild(document.createElement("td"));
      cell.setAttribute("data-col", columns[c]);
    }
    return row;
  }

  function objects(holder, sync) {
    var tbody = holder.querySelector("table.objects tbody");
    if (!tbody) {
      return;
    }
    var existing = Object.create(null);
    var rows = tbody.querySelectorAll("tr[data-object]");
    for (var r = 0; r < rows.length; r++) {
      existing[rows[r].getAttribute("data-object")] = rows[r];
    }
    var wanted = list(sync.objects);
    for (var i = 0; i < wanted.length; i++) {
      var id = text(wanted[i].id);
      var row = existing[id];
      if (row) {
        delete existing[id];
      } else {
        row = newRow();
      }
      fillRow(row, wanted[i]);
      if (tbody.children[i] !== row) {
        tbody.insertBefore(row, tbody.children[i] || null);
      }
    }
    for (var gone in existing) {
      tbody.removeChild(existing[gone]);
    }
    var more = holder.querySelector("p[data-more]");
    if (more) {
      var count = Number(sync.objectsMore) || 0;
      more.textContent = count > 0 ? count + " more objects not shown." : "";
    }
  }

  function preview(holder, model) {
    var box = holder.querySelector("div[data-preview]");
    if (!box) {
      return;
    }
    var signature = JSON.stringify(model || null);
    if (box.acmSignature === signature) {
      return; // unchanged: a diff the reader opened stays open
    }
    box.acmSignature = signature;
    clear(box);
    if (!model) {
      box.removeAttribute("data-preview-state");
      return;
    }
    box.setAttribute("data-preview-state", text(model.state));
    var pending = box.appendChild(element("p", text(model.pending) + " The whole fleet's preview: ", "pending"));
    pending.appendChild(element("code", model.command));
    if (model.status) {
      box.appendChild(element("p", model.status, "preview-status"));
    }
    if (model.counts) {
      box.appendChild(element("p", model.counts, "preview-counts"));
    }
    var sections = list(model.sections);
    for (var s = 0; s < sections.length; s++) {
      box.appendChild(element("h3", sections[s].title));
      var items = box.appendChild(document.createElement("ul"));
      items.setAttribute("data-section", text(sections[s].name));
      var entries = list(sections[s].items);
      for (var n = 0; n < entries.length; n++) {
        var item = items.appendChild(document.createElement("li"));
        if (entries[n].diff) {
          var details = item.appendChild(document.createElement("details"));
          details.appendChild(element("summary", entries[n].text));
          details.appendChild(element("pre", entries[n].diff));
        } else {
          item.textContent = text(entries[n].text);
        }
      }
      if (Number(sections[s].more) > 0) {
        items.appendChild(element("li", "and " + Number(sections[s].more) + " more", "more"));
      }
    }
    var notes = list(model.notes);
    if (notes.length) {
      var noteList = box.appendChild(element("ul", undefined, "notes"));
      for (var m = 0; m < notes.length; m++) {
        noteList.appendChild(element("li", notes[m]));
      }
    }
  }

  function apply(sync) {
    var holders = document.querySelectorAll("[data-sync]");
    for (var i = 0; i < holders.length; i++) {
      var holder = holders[i];
      if (holder.getAttribute("data-sync") !== sync.key) {
        continue;
      }
      holder.setAttribute("data-state", text(sync.state));
      for (var f = 0; f < fields.length; f++) {
        var cells = holder.querySelectorAll('[data-field="' + fields[f] + '"]');
        for (var c = 0; c < cells.length; c++) {
          cells[c].textContent = text(sync[fields[f]]);
        }
      }
      var lists = holder.querySelectorAll("ul[data-errors]");
      for (var l = 0; l < lists.length; l++) {
        clear(lists[l]);
        var errors = list(sync.errors);
        for (var n = 0; n < errors.length; n++) {
          lists[l].appendChild(element("li", errors[n]));
        }
      }
      if (Array.isArray(sync.objects)) {
        objects(holder, sync);
      }
      if ("preview" in sync) {
        preview(holder, sync.preview);
      }
    }
  }

  function applyFields(values) {
    var cells = document.querySelectorAll("dl.object dd[data-field]");
    for (var c = 0; c < cells.length; c++) {
      var key = cells[c].getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(values, key)) {
        cells[c].textContent = text(values[key]);
      }
    }
  }

  function poll() {
    fetch(api, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error("status " + answer.status);
        }
        return answer.json();
      })
      .then(function (data) {
        var syncs = list(data.syncs);
        for (var s = 0; s < syncs.length; s++) {
          apply(syncs[s]);
        }
        if (data.fields && typeof data.fields === "object") {
          applyFields(data.fields);
        }
        document.getElementById("updated").textContent = new Date().toISOString();
        body.removeAttribute("data-stale");
      })
      .catch(function () {
        body.setAttribute("data-stale", "true");
      })
      .finally(function () {
        window.setTimeout(poll, seconds * 1000);
      });
  }

  window.setTimeout(poll, seconds * 1000);
})();
