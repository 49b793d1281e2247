"""Coded errors: one registry, codes grouped by what the caller should do next.

Where Config Sync has the same rule, the code and name are Config Sync's (``KNV1017 MissingRepo``);
acm-lite's own errors use the ``ACM`` prefix. No I/O happens here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Category(Enum):
    """What a caller should do with an error."""

    PERMANENT = "permanent"  # stop and report: retrying the same input gives the same error
    TRANSIENT = "transient"  # retry with backoff: the world may change (network, API server)
    WAITING = "waiting"  # requeue later: something else has to happen first


@dataclass(frozen=True)
class Code:
    """One registered error code."""

    id: str
    name: str
    category: Category
    summary: str

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


_REGISTRY: dict[str, Code] = {}


def register(code_id: str, name: str, category: Category, summary: str) -> Code:
    """Add a code to the registry; a code or name registered twice is a programming error."""
    if code_id in _REGISTRY:
        raise ValueError(f"error code {code_id} registered twice")
    if any(c.name == name for c in _REGISTRY.values()):
        raise ValueError(f"error name {name} registered twice")
    code = Code(code_id, name, category, summary)
    _REGISTRY[code_id] = code
    return code


def all_codes() -> list[Code]:
    """Every registered code, sorted by id."""
    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def lookup(code_id: str) -> Code | None:
    """The code with this id, if registered."""
    return _REGISTRY.get(code_id)


class AcmError(Exception):
    """An error a user can act on: a code, what is wrong, where, and how to fix it."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        path: str | None = None,
        subject: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.subject = subject
        self.hint = hint

    @property
    def category(self) -> Category:
        return self.code.category

    def render(self) -> str:
        """The one-paragraph form printed by the CLI."""
        where = ", ".join(p for p in (self.path, self.subject) if p)
        lines = [f"{self.code}: {self.message}" + (f" ({where})" if where else "")]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code.id, "name": self.code.name, "message": self.message}
        for key in ("path", "subject", "hint"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


# Codes of the local development environment (the ACM9xxx range).
TOOLCHAIN_MISSING = register(
    "ACM9001",
    "ToolchainMissing",
    Category.PERMANENT,
    "A tool needed to build the local control-plane binaries (go) is not installed.",
)
BINARY_BUILD_FAILED = register(
    "ACM9002",
    "BinaryBuildFailed",
    Category.TRANSIENT,
    "Building a control-plane binary from the Go module proxy failed.",
)
CONTROL_PLANE_START_FAILED = register(
    "ACM9003",
    "ControlPlaneStartFailed",
    Category.TRANSIENT,
    "A local etcd or kube-apiserver did not become ready.",
)
DEV_STATE_MISSING = register(
    "ACM9004",
    "DevClusterNotRunning",
    Category.WAITING,
    "No local control plane is running; start one with `acm-lite dev up`.",
)
DEV_CLUSTER_UNKNOWN = register(
    "ACM9005",
    "DevClusterUnknown",
    Category.PERMANENT,
    "The named local cluster is not among those started by `acm-lite dev up`.",
)
DEV_ALREADY_RUNNING = register(
    "ACM9006",
    "DevClusterAlreadyRunning",
    Category.PERMANENT,
    "Local control planes are already running; stop them with `acm-lite dev down` first.",
)

# Codes of fleets (the ACM4xxx range).
INVALID_FLEET = register(
    "ACM4001",
    "InvalidFleet",
    Category.PERMANENT,
    "A fleet file is malformed: it names the entry at fault.",
)
