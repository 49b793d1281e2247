"""Where acm-lite keeps files outside any checkout: caches (binaries, Git mirrors) and state."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$ACM_LITE_CACHE``, else ``$XDG_CACHE_HOME/acm-lite``, else ``~/.cache/acm-lite``."""
    explicit = os.environ.get("ACM_LITE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "acm-lite"


def state_dir() -> Path:
    """``$ACM_LITE_STATE_DIR``, else ``$XDG_STATE_HOME/acm-lite``, else ``~/.local/state/acm-lite``."""
    explicit = os.environ.get("ACM_LITE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "acm-lite"
