"""acm-lite: Config Sync, Policy Controller and fleet management for any Kubernetes cluster."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata on first use: importing
    importlib.metadata costs every command (and each TAB of shell completion) tens of
    milliseconds that only ``--version`` needs."""
    if name != "__version__":
        raise AttributeError(f"module 'acm_lite' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("acm-lite")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
