from __future__ import annotations

import base64
from pathlib import Path

import yaml

from acm_lite.devcluster import kubeconfig


def test_one_context_per_cluster_with_embedded_credentials(tmp_path: Path) -> None:
    for f in ("ca", "crt", "key"):
        (tmp_path / f).write_bytes(f"{f}-bytes".encode())
    entries = [
        kubeconfig.Entry(n, f"https://127.0.0.1:{p}", tmp_path / "ca", tmp_path / "crt", tmp_path / "key")
        for n, p in (("eks-prod", 1), ("aks", 2))
    ]
    path = tmp_path / "kubeconfig"
    kubeconfig.write(path, entries)
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "eks-prod"
    assert [c["name"] for c in doc["contexts"]] == ["eks-prod", "aks"]
    assert doc["contexts"][1]["context"] == {"cluster": "aks", "user": "aks-admin"}
    assert doc["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:2"
    user = doc["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == b"key-bytes"
    assert path.stat().st_mode & 0o777 == 0o600
