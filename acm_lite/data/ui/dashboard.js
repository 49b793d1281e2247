// acm-lite dashboard: polls /ui/api/fleet and updates the page in place. Values are set with
// textContent and setAttribute only, never parsed as HTML.
"use strict";
(function () {
  var body = document.body;
  var seconds = parseFloat(body.getAttribute("data-poll") || "0");
  if (!(seconds > 0)) {
    return;
  }
  var fields = ["state", "reachable", "commit", "synced", "health", "errorCount"];

  function apply(sync) {
    var holders = document.querySelectorAll("[data-sync]");
    for (var i = 0; i < holders.length; i++) {
      var holder = holders[i];
      if (holder.getAttribute("data-sync") !== sync.key) {
        continue;
      }
      holder.setAttribute("data-state", String(sync.state));
      for (var f = 0; f < fields.length; f++) {
        var cells = holder.querySelectorAll('[data-field="' + fields[f] + '"]');
        for (var c = 0; c < cells.length; c++) {
          cells[c].textContent = String(sync[fields[f]]);
        }
      }
      var lists = holder.querySelectorAll("ul[data-errors]");
      for (var l = 0; l < lists.length; l++) {
        var list = lists[l];
        while (list.firstChild) {
          list.removeChild(list.firstChild);
        }
        var errors = Array.isArray(sync.errors) ? sync.errors : [];
        for (var n = 0; n < errors.length; n++) {
          var item = document.createElement("li");
          item.textContent = String(errors[n]);
          list.appendChild(item);
        }
      }
    }
  }

  function poll() {
    fetch("/ui/api/fleet", { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error("status " + answer.status);
        }
        return answer.json();
      })
      .then(function (data) {
        var syncs = Array.isArray(data.syncs) ? data.syncs : [];
        for (var s = 0; s < syncs.length; s++) {
          apply(syncs[s]);
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
