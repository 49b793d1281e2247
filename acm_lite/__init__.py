"""acm-lite: Config Sync, Policy Controller and fleet management for any Kubernetes cluster."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("acm-lite")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
