"""Rendering: a sync directory holding a kustomization is turned into objects by
``kustomize build`` (Helm charts inflated by helm) before the read stage, as Config Sync's
hydration does.

``render(snapshot_root, sync_dir, options, commit=..., source_format=...)`` returns None when the
directory needs no rendering, else a ``Rendered`` (a ``reader.ReadResult``). Modules: ``plan``
(pure decisions, no I/O), ``scan`` (reads the snapshot, writes the private copy), ``run``
(the subprocess under its limits), ``cache`` (results by key), ``stage`` (the stage itself).
"""

from __future__ import annotations

from acm_lite.render.stage import Options, Rendered, clear_cache, render, render_snapshot

__all__ = ["Options", "Rendered", "clear_cache", "render", "render_snapshot"]
