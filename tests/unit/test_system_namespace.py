"""The system namespace is one setting: ``--system-namespace``, else ``$ACM_LITE_SYSTEM_NAMESPACE``,
else ``acm-lite-system``; the records' paths, the reserved-namespace rule and the protected-prune
rule all follow it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from acm_lite import api
from acm_lite.cli import main as cli_main
from acm_lite.cli.clusterargs import UsageError, use_system_namespace
from acm_lite.objects import Manifest
from acm_lite.plan import protected
from acm_lite.status import store
from acm_lite.validate import reserved


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(api.SYSTEM_NAMESPACE_ENV, raising=False)
    yield
    monkeypatch.delenv(api.SYSTEM_NAMESPACE_ENV, raising=False)
    api.set_system_namespace(None)


def test_default_then_environment_then_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.set_system_namespace(None) == "acm-lite-system"
    monkeypatch.setenv(api.SYSTEM_NAMESPACE_ENV, "from-env")
    assert api.set_system_namespace(None) == "from-env"
    assert api.system_namespace() == "from-env"
    assert api.set_system_namespace("from-flag") == "from-flag"
    assert api.system_namespace() == "from-flag"


@pytest.mark.parametrize("bad", ["Platform", "a_b", "-a", "a" * 64, "a/b", "ns\n"])
def test_a_name_that_cannot_name_a_namespace_is_refused(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="--system-namespace"):
        api.set_system_namespace(bad)
    monkeypatch.setenv(api.SYSTEM_NAMESPACE_ENV, bad)
    with pytest.raises(ValueError, match=api.SYSTEM_NAMESPACE_ENV):
        api.set_system_namespace(None)


def test_the_flag_is_a_usage_error_when_bad() -> None:
    class Args:
        system_namespace = "Not_A_Namespace"

    with pytest.raises(UsageError, match="not a namespace name"):
        use_system_namespace(Args())  # type: ignore[arg-type]


def test_status_refuses_a_bad_flag_with_usage_exit(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["status", "--system-namespace", "UPPER"]) == 2
    assert "not a namespace name" in capsys.readouterr().err


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.paths.append(path)
        return {"items": []}


def test_records_follow_the_configured_namespace() -> None:
    api.set_system_namespace("platform-sync")
    cluster = Recorder()
    store.list_syncs(cluster)  # type: ignore[arg-type]
    store.read(cluster, "root-sync")  # type: ignore[arg-type]
    assert cluster.paths == [
        "/apis/acm-lite.io/v1alpha1/namespaces/platform-sync/rootsyncs",
        "/apis/acm-lite.io/v1alpha1/namespaces/platform-sync/rootsyncs/root-sync",
    ]


def _configmap(namespace: str) -> Manifest:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": namespace}}
    return Manifest(body, "cm.yaml")


def test_the_configured_namespace_is_reserved_and_protected() -> None:
    api.set_system_namespace("platform-sync")
    assert [p.code.id for p in reserved.check(_configmap("platform-sync"))] == ["KNV1034"]
    assert protected.protected_namespace("platform-sync")
    # acm-lite-system is then an ordinary namespace a source may manage
    assert reserved.check(_configmap("acm-lite-system")) == []
    assert not protected.protected_namespace("acm-lite-system")
    api.set_system_namespace(None)
    assert [p.code.id for p in reserved.check(_configmap("acm-lite-system"))] == ["KNV1034"]
    assert protected.protected_namespace("acm-lite-system")


def test_vet_refuses_a_bad_environment_value_as_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv(api.SYSTEM_NAMESPACE_ENV, "Bad_Name")
    assert cli_main.main(["vet", "--source-format", "unstructured", str(tmp_path)]) == 2
    assert f"${api.SYSTEM_NAMESPACE_ENV} 'Bad_Name' is not a namespace name" in capsys.readouterr().err


def test_vet_reserves_the_namespace_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: platform-sync}\n"
    )
    assert cli_main.main(["vet", "--source-format", "unstructured", str(tmp_path)]) == 0
    capsys.readouterr()
    monkeypatch.setenv(api.SYSTEM_NAMESPACE_ENV, "platform-sync")
    assert cli_main.main(["vet", "--source-format", "unstructured", str(tmp_path)]) == 1
    assert "KNV1034" in capsys.readouterr().out
