"""The admission webhook's decisions: one AdmissionReview (``admission.k8s.io/v1``) in, the
answer out. Pure: no I/O.

As Config Sync's webhook decides: acm-lite's own identity may do anything, except take over an
object another sync manages (the race of two syncs declaring one object: denied as ``KNV1060``).
Anyone else is denied (``ACM2016``) a change to a field acm-lite declared, to acm-lite's labels
and annotations, the creation of an object marked as acm-lite's, and the deletion of a managed
object; every other change passes.

The declared fields are the ones acm-lite's field manager owns by server-side apply in the old
object's ``metadata.managedFields``: the API server keeps that set with the object, updated by
every apply, so the webhook needs no copy of the source and the object no extra annotation
(Config Sync keeps the same set in its ``configsync.gke.io/declared-fields`` annotation).

A body that is not an AdmissionReview with a request and its uid is answered 400 (the API server
then applies the failure policy); a review whose objects are not objects is denied, code 400: the
API server never sends one, so it comes from someone probing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from acm_lite import api, errors, metadata

ADMISSION_VERSION = "admission.k8s.io/v1"
MAX_DEPTH = 64  # nesting the declared-field walk follows; deeper values are compared whole
MAX_PATHS = 5  # changed fields a denial names
# kube-system controllers whose deletions pass: the garbage collector removes an object whose
# owners are gone, the namespace controller empties a Namespace being deleted.
GARBAGE_COLLECTOR = "system:serviceaccount:kube-system:generic-garbage-collector"
NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
_SERVICE_ACCOUNT = "system:serviceaccount:"
_REPOSYNC_PREFIX = "ns-reconciler-"  # a RepoSync's sync and ServiceAccount name (Config Sync's)
_MISSING: Any = object()


class MalformedReviewError(ValueError):
    """A body the webhook cannot answer as a review (HTTP 400)."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    code: int = 200
    reason: str = ""
    message: str = ""


ALLOW = Verdict(True)


def answer(body: bytes, self_user: str) -> bytes:
    """The AdmissionReview answering ``body``; ``MalformedReviewError`` for a body that is not
    one (nothing to answer to)."""
    return review(body, self_user)[0]


def review(body: bytes, self_user: str) -> tuple[bytes, Verdict]:
    """The AdmissionReview answering ``body`` and the verdict in it (see ``answer``)."""
    try:
        review = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise MalformedReviewError("the body is not JSON") from e
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise MalformedReviewError("the body is not an AdmissionReview")
    if review.get("apiVersion") != ADMISSION_VERSION:
        raise MalformedReviewError(f"only {ADMISSION_VERSION} AdmissionReviews are answered")
    request = review.get("request")
    uid = request.get("uid") if isinstance(request, dict) else None
    if not isinstance(uid, str) or not uid or len(uid) > 256:
        raise MalformedReviewError("the AdmissionReview has no request.uid")
    assert isinstance(request, dict)
    try:
        verdict = decide(request, self_user)
    except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as e:  # fail closed
        verdict = Verdict(
            False, 400, "BadRequest", f"{errors.CHANGE_DENIED.id} malformed AdmissionReview: {e}"
        )
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": verdict.code, "reason": verdict.reason, "message": verdict.message}
    out = {"apiVersion": ADMISSION_VERSION, "kind": "AdmissionReview", "response": response}
    return json.dumps(out).encode(), verdict


def _object(request: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``request.object`` or ``request.oldObject``, checked to have the shape every reader here
    expects (maps where maps go); ValueError when it does not."""
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("metadata") or {}, dict):
        raise ValueError(f"request.{key} is not an object")
    meta = value.get("metadata") or {}
    for field in ("labels", "annotations"):
        if not isinstance(meta.get(field) or {}, dict):
            raise ValueError(f"request.{key}.metadata.{field} is not a map")
    if not isinstance(meta.get("managedFields") or [], list):
        raise ValueError(f"request.{key}.metadata.managedFields is not a list")
    return value


def decide(request: dict[str, Any], self_user: str) -> Verdict:
    """The verdict on one review's request; ValueError/TypeError when it is malformed."""
    operation = request.get("operation")
    user_info = request.get("userInfo")
    if not isinstance(user_info, dict) or not isinstance(user_info.get("username"), str):
        raise ValueError("request.userInfo.username is missing")
    user = user_info["username"]
    old, new = _object(request, "oldObject"), _object(request, "object")
    if request.get("subResource"):  # not registered for; a stray one says nothing of fields
        return ALLOW
    if operation not in ("CREATE", "UPDATE", "DELETE"):
        return ALLOW  # CONNECT and whatever comes later: not registered for
    if operation in ("CREATE", "UPDATE") and new is None:
        raise ValueError(f"a {operation} request has no object")
    if operation in ("UPDATE", "DELETE") and old is None:
        raise ValueError(f"a {operation} request has no oldObject")
    if user == self_user or _own_reposync(user, old, new):
        return _takeover(old, new) if operation != "DELETE" else ALLOW
    if operation == "CREATE":
        assert new is not None
        sync = metadata.owner(new)
        if sync is None:
            return ALLOW
        return _deny(user, f"may not create {_subject(new)} marked as managed by acm-lite sync {sync!r}", new)
    assert old is not None
    if operation == "DELETE":
        return _delete(user, old)
    assert new is not None
    return _update(user, old, new)


def _own_reposync(user: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    """A RepoSync's pass: its ServiceAccount (named as its sync, in its namespace, impersonated
    by the daemon) writing an object of that namespace that its own sync manages or takes."""
    if not user.startswith(_SERVICE_ACCOUNT):
        return False
    namespace, _, name = user[len(_SERVICE_ACCOUNT) :].partition(":")
    if not name.startswith(_REPOSYNC_PREFIX):
        return False
    objects = [obj for obj in (old, new) if obj is not None]
    return all((obj.get("metadata") or {}).get("namespace") == namespace for obj in objects) and any(
        metadata.owner(obj) == name for obj in objects
    )


def _takeover(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Verdict:
    """acm-lite itself: a sync may not write an object another sync manages."""
    before, after = metadata.owner(old), metadata.owner(new)
    if before is None or after is None or before == after:
        return ALLOW
    assert old is not None
    message = (
        f"{errors.MANAGEMENT_CONFLICT.id} {_subject(old)} is managed by sync {before!r}"
        f"{_origin(old)}; sync {after!r} may not take it over (remove it from one of the two sources)"
    )
    return Verdict(False, 409, "Conflict", message)


def _delete(user: str, old: dict[str, Any]) -> Verdict:
    sync = metadata.owner(old)
    meta = old.get("metadata") or {}
    if sync is None or meta.get("deletionTimestamp"):
        return ALLOW  # a deletion already accepted is finishing (finalizers), as in Config Sync
    if user == NAMESPACE_CONTROLLER or (user == GARBAGE_COLLECTOR and meta.get("ownerReferences")):
        return ALLOW
    return _deny(user, f"may not delete {_subject(old)}: it is managed by acm-lite sync {sync!r}", old)


def _update(user: str, old: dict[str, Any], new: dict[str, Any]) -> Verdict:
    sync = metadata.owner(old) or metadata.owner(new)
    if sync is None:
        return ALLOW
    marks = _changed_marks(old, new)
    if marks:
        return _deny(
            user, f"may not change acm-lite's {', '.join(marks)} of {_subject(old)} (sync {sync!r})", old
        )
    if metadata.live_annotation(old, metadata.MUTATION) == metadata.IGNORE_MUTATION:
        return ALLOW  # the source asks that the object never be changed by acm-lite: others may
    changed: list[str] = []
    for fields in declared_fields(old):
        _changed(fields, old, new, "", changed, depth=0)
    if not changed:
        return ALLOW
    shown = sorted(set(changed))
    named = ", ".join(shown[:MAX_PATHS]) + (
        f" and {len(shown) - MAX_PATHS} more" if len(shown) > MAX_PATHS else ""
    )
    return _deny(user, f"may not change {named} of {_subject(old)}: declared by acm-lite sync {sync!r}", old)


def _deny(user: str, what: str, obj: dict[str, Any]) -> Verdict:
    message = (
        f"{errors.CHANGE_DENIED.id} {errors.shown(user)} {what}{_origin(obj)}; change the source "
        "instead, and the next pass applies it"
    )
    return Verdict(False, 403, "Forbidden", message)


def _origin(obj: dict[str, Any]) -> str:
    """Where the object is declared: its file and commit, as acm-lite recorded them on it."""
    path = metadata.live_annotation(obj, metadata.SOURCE_PATH)
    commit = metadata.live_annotation(obj, metadata.COMMIT)
    parts = []
    if path:
        parts.append(f"declared in {errors.shown(path)}")
    if commit:
        parts.append(f"at commit {errors.shown(commit)}")
    return f" ({' '.join(parts)})" if parts else ""


def _subject(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    api_version, kind = str(obj.get("apiVersion", ""))[:253], str(obj.get("kind", ""))[:63]
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    namespace, name = str(meta.get("namespace") or "")[:63], str(meta.get("name") or "")[:253]
    where = f"{namespace}/{name}" if namespace else name
    return f"{kind}{'.' + group if group else ''} {where}"


def _changed_marks(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for kind, keys in (("labels", metadata.MARK_LABELS), ("annotations", metadata.MARK_ANNOTATIONS)):
        before = (old.get("metadata") or {}).get(kind) or {}
        after = (new.get("metadata") or {}).get(kind) or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            raise ValueError(f"metadata.{kind} is not a map")
        out += [f"{kind[:-1]} {key}" for key in keys if before.get(key) != after.get(key)]
    return out


def declared_fields(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The field sets (``fieldsV1``) acm-lite's field manager applied to ``obj``."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    if not isinstance(entries, list):
        raise ValueError("metadata.managedFields is not a list")
    return [
        e["fieldsV1"]
        for e in entries
        if isinstance(e, dict)
        and e.get("manager") == api.FIELD_MANAGER
        and e.get("operation") == "Apply"
        and not e.get("subresource")
        and isinstance(e.get("fieldsV1"), dict)
    ]


def _changed(fields: dict[str, Any], old: Any, new: Any, path: str, out: list[str], *, depth: int) -> None:
    """Append the paths below ``path`` that ``fields`` (a fieldsV1 tree) names and whose values
    differ between ``old`` and ``new``."""
    for key, child in fields.items():
        if key == ".":
            continue
        kind, _, text = key.partition(":")
        if kind == "f":
            before = old.get(text, _MISSING) if isinstance(old, dict) else _MISSING
            after = new.get(text, _MISSING) if isinstance(new, dict) else _MISSING
            sub = f"{path}.{text}" if path else text
        elif kind in ("k", "v", "i"):
            before, after = _item(old, kind, text), _item(new, kind, text)
            sub = f"{path}[{text}]"
        else:
            continue  # a key kind this reader does not know: nothing to compare
        leaf = not isinstance(child, dict) or not any(k != "." for k in child)
        if leaf or before is _MISSING or after is _MISSING or depth >= MAX_DEPTH:
            if not _same(before, after):
                out.append(sub[:200])
        else:
            _changed(child, before, after, sub, out, depth=depth + 1)


def _item(items: Any, kind: str, text: str) -> Any:
    """The element of a list a fieldsV1 key names: by its key fields (``k:``), its value
    (``v:``) or its position (``i:``)."""
    if not isinstance(items, list):
        return _MISSING
    if kind == "i":
        index = int(text) if text.isdigit() and len(text) < 10 else -1
        return items[index] if 0 <= index < len(items) else _MISSING
    wanted = json.loads(text)
    if kind == "v":
        return wanted if any(_same(i, wanted) for i in items) else _MISSING
    if not isinstance(wanted, dict):
        raise ValueError(f"managed field key {errors.shown(text)} is not an object")
    for element in items:
        if isinstance(element, dict) and all(_same(element.get(k, _MISSING), v) for k, v in wanted.items()):
            return element
    return _MISSING


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)
