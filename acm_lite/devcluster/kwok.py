"""kwok for the local clusters: its configuration (our Stages), its command line and the fake Nodes.

kwok simulates nodes and the pod lifecycle without a kubelet or a container runtime: it manages
only the Nodes carrying ``kwok.x-k8s.io/node: fake`` and the Pods bound to them, and moves them
through the Stages in ``acm_lite/data/kwok-stages.yaml``. No I/O but writing the configuration.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_ANNOTATION_VALUE = "fake"
# A Pod annotated with this (from its template) does not become Ready; see kwok-stages.yaml.
SIMULATE_ANNOTATION = "acm-lite.dev/simulate"
SIMULATIONS = ("fail", "crashloop")
DEFAULT_NODES = 3
STAGE_API_VERSION = "kwok.x-k8s.io/v1alpha1"


def stages() -> list[dict[str, Any]]:
    """Every Stage kwok runs, as shipped in the package data."""
    text = resources.files("acm_lite").joinpath("data/kwok-stages.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def configuration() -> list[dict[str, Any]]:
    """The documents of kwok's ``--config`` file (its options are flags, see ``command``)."""
    return stages()


def write_config(path: Path) -> Path:
    """Write kwok's configuration to ``path`` (a multi-document YAML file)."""
    path.write_text(yaml.safe_dump_all(configuration(), sort_keys=False))
    return path


def command(binary: str, *, kubeconfig: Path, config: Path, port: int) -> list[str]:
    """kwok's command line: our configuration only (never ``~/.kwok``), our nodes only, loopback."""
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}={NODE_ANNOTATION_VALUE}",
        f"--server-address=127.0.0.1:{port}",
        "--node-lease-duration-seconds=40",
    ]


def node_names(count: int) -> list[str]:
    return [f"kwok-node-{i}" for i in range(1, count + 1)]


def node(name: str) -> dict[str, Any]:
    """A fake Node kwok manages; it starts with no status and kwok's first Stage makes it Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: NODE_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
    }
