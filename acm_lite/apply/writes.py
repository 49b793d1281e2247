"""How acm-lite writes to a cluster. Every request that creates, changes or deletes an object
(configured objects, drift repair, the inventory, RootSyncs, acm-lite's CRDs and namespace) is
built here, so the field manager, conflict forcing, dry runs, field validation and delete
options are spelled out in one place.

The builders are pure and return a ``Call``; ``send`` sends one (I/O), and
``Client.request_many`` sends many side by side.
"""

from __future__ import annotations

from typing import Any

from acm_lite import api
from acm_lite.cluster.client import Call, Client

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


def server_side_apply(
    path: str,
    body: Any,
    *,
    field_manager: str = api.FIELD_MANAGER,
    force: bool = True,
    field_validation: str | None = None,
    dry_run: bool = False,
) -> Call:
    """A server-side apply of ``body`` to the object at ``path``. ``force`` takes over fields
    another manager holds; ``field_validation`` ("Ignore" for a kind already checked offline)
    overrides the server's own; ``dry_run`` has the server check it and store nothing."""
    query = {"fieldManager": field_manager}
    if force:
        query["force"] = "true"
    if field_validation is not None:
        query["fieldValidation"] = field_validation
    if dry_run:
        query["dryRun"] = "All"
    return Call("PATCH", path, query, body, APPLY)


def merge_patch(path: str, patch: Any, *, field_manager: str | None = None, dry_run: bool = False) -> Call:
    """A JSON merge patch of the object (or subresource) at ``path``: what it names is set,
    what it sets to null is removed, nothing else is touched."""
    query = {}
    if field_manager is not None:
        query["fieldManager"] = field_manager
    if dry_run:
        query["dryRun"] = "All"
    return Call("PATCH", path, query or None, patch, MERGE)


def create(path: str, body: Any, *, field_manager: str = api.FIELD_MANAGER) -> Call:
    """A create (POST to the collection at ``path``): refused when the name is taken, so it
    never overwrites anything."""
    return Call("POST", path, {"fieldManager": field_manager}, body)


def delete(
    path: str,
    *,
    uid: str | None = None,
    propagation: str | None = None,
    selector: str | None = None,
    dry_run: bool = False,
) -> Call:
    """A delete of the object at ``path``, or with ``selector`` of every object of the
    collection at ``path`` it selects. ``uid``: only while the object is still that one (a
    precondition); ``propagation``: the policy for its dependents (else the server's default)."""
    query = {}
    if selector is not None:
        query["labelSelector"] = selector
    if dry_run:
        query["dryRun"] = "All"
    options: dict[str, Any] = {}
    if propagation is not None:
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
    if uid:
        options["preconditions"] = {"uid": uid}
    return Call("DELETE", path, query or None, options or None)


def send(client: Client, call: Call) -> None:
    """Send one write; raises what ``Client.request`` raises (ApiError, a coded error)."""
    client.request(
        call.method, call.path, query=call.query, body=call.body, content_type=call.content_type, decode=False
    )
