"""Config Sync's own RootSync objects (configsync.gke.io/v1beta1, v1alpha1) read field by field:
each field carried over, refused naming it (ACM1108, ACM1107, KNV1061), or left out with a
warning (ACM1109); acm-lite migrate's output is accepted by acm-lite's CRD schema."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from acm_lite import errors
from acm_lite.cli import migrate
from acm_lite.cli.main import main
from acm_lite.cluster.client import ApiError
from acm_lite.errors import AcmError
from acm_lite.reconcile import rootsyncs, sourcerefs
from acm_lite.status.model import MAX_PART_ERRORS, State, SyncStatus

CRD = Path(__file__).resolve().parents[2] / "acm_lite" / "data" / "crds" / "rootsyncs.acm-lite.io.yaml"


def _config_sync(spec: dict[str, Any], version: str = "v1beta1") -> dict[str, Any]:
    return {
        "apiVersion": f"configsync.gke.io/{version}",
        "kind": "RootSync",
        "metadata": {"name": "root-sync", "namespace": "config-management-system"},
        "spec": spec,
    }


GIT = {"repo": "https://git.example.com/platform/config.git", "branch": "main", "dir": "config"}


def _refused(spec: dict[str, Any]) -> AcmError:
    with pytest.raises(AcmError) as raised:
        rootsyncs.read(_config_sync(spec))
    return raised.value


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha1"])
def test_git_fields_are_carried_over(version: str) -> None:
    item = _config_sync(
        {
            "sourceFormat": "unstructured",
            "sourceType": "git",
            "git": {
                **GIT,
                "revision": "v1.2.0",
                "period": "45s",
                "auth": "token",
                "secretRef": {"name": "git-creds"},
                "noSSLVerify": False,
            },
            "override": {"reconcileTimeout": "2m", "namespaceStrategy": "implicit", "roleRefs": []},
        },
        version,
    )
    assert rootsyncs.is_config_sync(item)
    spec, warnings = rootsyncs.read(item)
    assert spec is not None and warnings == []
    assert (spec.repo, spec.revision, spec.dir, spec.source_format) == (
        GIT["repo"],
        "v1.2.0",
        "config",
        "unstructured",
    )
    assert (spec.period, spec.git_auth, spec.git_secret_ref, spec.reconcile_timeout) == (
        45.0,
        "token",
        "git-creds",
        120.0,
    )


def test_ssh_auth_and_a_branch_alone() -> None:
    spec, _ = rootsyncs.read(_config_sync({"git": {**GIT, "auth": "ssh", "secretRef": {"name": "k"}}}))
    assert spec is not None and (spec.revision, spec.git_auth, spec.git_secret_ref) == ("main", "ssh", "k")
    assert spec.period is None  # the daemon's --period


def test_oci_and_helm_periods_are_carried_over() -> None:
    oci, _ = rootsyncs.read(
        _config_sync(
            {"sourceType": "oci", "oci": {"image": "r.example.com/c:v1", "dir": "a", "period": "1m"}}
        )
    )
    assert oci is not None and (oci.source_type, oci.period, oci.oci and oci.oci.dir) == ("oci", 60.0, "a")
    helm, _ = rootsyncs.read(
        _config_sync(
            {
                "sourceType": "helm",
                "helm": {
                    "repo": "https://charts.example.com",
                    "chart": "web",
                    "version": "1.0.0",
                    "period": "2m",
                },
            }
        )
    )
    assert helm is not None and helm.period == 120.0 and helm.helm is not None and helm.helm.chart == "web"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"git": {**GIT, "noSSLVerify": True}}, "spec.git.noSSLVerify"),
        ({"git": {**GIT, "caCertSecretRef": {"name": "ca"}}}, "spec.git.caCertSecretRef"),
        ({"git": {**GIT, "proxy": "http://proxy:3128"}}, "spec.git.proxy"),
        ({"git": {**GIT, "auth": "cookiefile", "secretRef": {"name": "c"}}}, "spec.git.auth"),
        ({"git": {**GIT, "auth": "githubapp", "secretRef": {"name": "c"}}}, "spec.git.auth"),
        ({"git": {**GIT, "brnach": "main"}}, "spec.git.brnach"),
        (
            {"sourceType": "oci", "oci": {"image": "i", "caCertSecretRef": {"name": "ca"}}},
            "spec.oci.caCertSecretRef",
        ),
        (
            {"sourceType": "helm", "helm": {"repo": "r", "chart": "c", "caCertSecretRef": {"name": "x"}}},
            "spec.helm.caCertSecretRef",
        ),
        (
            {"git": GIT, "override": {"roleRefs": [{"kind": "ClusterRole", "name": "edit"}]}},
            "spec.override.roleRefs",
        ),
        ({"git": GIT, "override": {"namespaceStrategy": "explicit"}}, "spec.override.namespaceStrategy"),
        ({"git": GIT, "override": {"somethingNew": 1}}, "spec.override.somethingNew"),
        ({"git": GIT, "sourceFormat": "flat"}, "spec.sourceFormat"),
        ({"git": GIT, "sourceType": "svn"}, "spec.sourceType"),
        ({"git": GIT, "extra": {}}, "spec.extra"),
    ],
)
def test_what_acm_lite_does_not_do_is_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    error = _refused(spec)
    assert error.code is errors.CONFIG_SYNC_FIELD_UNSUPPORTED
    assert f"{field} " in error.message and "root-sync" in error.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"git": {**GIT, "auth": "gcpserviceaccount", "gcpServiceAccountEmail": "a@b"}},
            "spec.git.gcpServiceAccountEmail",
        ),
        ({"git": {**GIT, "auth": "gcenode"}}, "spec.git.auth"),
    ],
)
def test_a_cloud_identity_is_refused_as_acm1107(spec: dict[str, Any], field: str) -> None:
    error = _refused(spec)
    assert error.code is errors.SOURCE_AUTH_UNSUPPORTED and error.message.startswith(field)


@pytest.mark.parametrize(
    "git",
    [
        {**GIT, "auth": "token"},
        {**GIT, "auth": "ssh", "secretRef": {}},
        {**GIT, "secretRef": {"name": "creds"}},
        {**GIT, "period": "soon"},
        {**GIT, "period": "10ms"},
    ],
)
def test_auth_secret_ref_and_period_are_checked_as_config_sync_checks_them(git: dict[str, Any]) -> None:
    assert _refused({"git": git}).code is errors.INVALID_SYNC


@pytest.mark.parametrize("key", rootsyncs._POD_SETTINGS)
def test_settings_of_config_syncs_pods_are_warned_and_left_out(key: str) -> None:
    spec, warnings = rootsyncs.read(
        _config_sync({"git": GIT, "override": {key: "x", "reconcileTimeout": "1m"}})
    )
    assert spec is not None and spec.reconcile_timeout == 60.0
    assert [(w.code, f"spec.override.{key} " in w.message, w.blocking) for w in warnings] == [
        (errors.CONFIG_SYNC_FIELD_IGNORED, True, False)
    ]


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_migrate_prints_acm_lite_rootsyncs_the_crd_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "root-sync.yaml"
    docs = [
        _config_sync(
            {
                "sourceFormat": "unstructured",
                "git": {**GIT, "period": "30s", "auth": "token", "secretRef": {"name": "git-creds"}},
                "override": {"reconcileTimeout": "3m", "resources": [{"containerName": "reconciler"}]},
            }
        ),
        _config_sync({"sourceType": "oci", "oci": {"image": "r.example.com/c:v1", "period": "1m"}}),
    ]
    docs[1]["metadata"]["name"] = "images"
    source.write_text(yaml.safe_dump_all(docs))
    assert main(["migrate", str(source)]) == 0
    captured = capsys.readouterr()
    assert "ACM1109" in captured.err and "spec.override.resources" in captured.err
    out = list(yaml.safe_load_all(captured.out))
    assert [d["apiVersion"] for d in out] == ["acm-lite.io/v1alpha1"] * 2
    assert out[0]["spec"]["git"] == {
        "repo": GIT["repo"],
        "revision": "main",
        "dir": "config",
        "auth": "token",
        "secretRef": {"name": "git-creds"},
        "period": "30s",
    }
    assert out[1]["spec"]["oci"]["period"] == "60s"
    validator = jsonschema.Draft7Validator(_schema())
    for doc in out:
        assert [e.message for e in validator.iter_errors(doc)] == []
        # and the daemon reads the result back as the same sync
        assert rootsyncs.spec_of(doc) == rootsyncs.spec_of(
            {**docs[out.index(doc)], "apiVersion": doc["apiVersion"]}
        )


def test_migrate_refuses_naming_the_file_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "root-sync.yaml"
    source.write_text(yaml.safe_dump(_config_sync({"git": {**GIT, "noSSLVerify": True}})))
    out = tmp_path / "out.yaml"
    assert main(["migrate", str(source), "--out", str(out)]) == 1
    assert not out.exists()
    assert main(["migrate"]) == 2


def test_migrate_converted_keeps_the_name_in_the_system_namespace() -> None:
    spec, _ = rootsyncs.read(_config_sync({"git": GIT}))
    assert spec is not None
    assert migrate.converted(spec)["metadata"] == {"name": "root-sync", "namespace": "acm-lite-system"}


def test_serve_config_reads_a_config_sync_file_and_logs_its_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "syncs.yaml"
    path.write_text(yaml.safe_dump(_config_sync({"git": GIT, "override": {"statusMode": "disabled"}})))
    [spec] = rootsyncs.from_config(path)
    assert spec.revision == "main"
    assert any("spec.override.statusMode" in r.getMessage() for r in caplog.records)
    path.write_text(yaml.safe_dump(_config_sync({"git": {**GIT, "proxy": "http://p"}})))
    with pytest.raises(AcmError) as raised:
        rootsyncs.from_config(path)
    assert raised.value.code is errors.CONFIG_SYNC_FIELD_UNSUPPORTED and raised.value.path == str(path)


class _Secrets:
    """A stand-in for the API server's Secrets (pure unit test; the integration test uses a real one)."""

    def __init__(self, data: dict[str, str] | None):
        self.data = data
        self.paths: list[str] = []

    def request(self, method: str, path: str, **_kw: Any) -> Any:
        self.paths.append(path)
        if self.data is None:
            raise ApiError(404, "not found", path)
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in self.data.items()}}

    def request_many(self, *_a: Any, **_kw: Any) -> Any:
        raise AssertionError("not used")


def test_git_credentials_come_from_the_secret_with_config_syncs_key_names(tmp_path: Path) -> None:
    token = sourcerefs.git_auth(
        "token", "git-creds", _Secrets({"username": "alice", "token": "t0k"}), tmp_path
    )
    assert (token.username, token.token, token.ssh_key) == ("alice", "t0k", None)
    secrets = _Secrets(
        {"ssh": "-----BEGIN KEY-----\nabc\n-----END KEY-----", "known_hosts": "h ssh-ed25519 AAA"}
    )
    ssh = sourcerefs.git_auth("ssh", "k", secrets, tmp_path)
    assert secrets.paths == ["/api/v1/namespaces/acm-lite-system/secrets/k"]
    assert ssh.ssh_key is not None and ssh.ssh_key.read_text().endswith("-----END KEY-----\n")
    assert ssh.ssh_key.stat().st_mode & 0o077 == 0
    assert ssh.known_hosts is not None and ssh.known_hosts.read_text() == "h ssh-ed25519 AAA"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (None, "does not exist"),
        ({"username": "alice"}, "no usable key 'token'"),
        ({"token": "secret-value"}, "'username'"),
    ],
)
def test_a_missing_secret_or_key_is_knv1061_without_the_value(
    tmp_path: Path, data: dict[str, str] | None, needle: str
) -> None:
    with pytest.raises(AcmError) as raised:
        sourcerefs.git_auth("token", "git-creds", _Secrets(data), tmp_path)
    assert raised.value.code is errors.INVALID_SYNC and needle in raised.value.message
    assert "secret-value" not in raised.value.message and "git-creds" in raised.value.message


def _error(code: str, source: str = "a.yaml") -> dict[str, Any]:
    return {"code": code, "name": "X", "message": "went wrong", "blocking": True, "source": source}


@pytest.mark.parametrize(
    ("stage", "part"),
    [
        ("source", "source"),
        ("parse", "source"),
        ("render", "rendering"),
        ("apply", "sync"),
        ("policy", "sync"),
    ],
)
def test_status_reports_errors_where_config_sync_does(stage: str, part: str) -> None:
    status = SyncStatus(
        State.ERROR,
        commit="c2",
        synced_commit="c1",
        errors=[_error("KNV1021")],
        stage=stage,
        rendering={"commit": "c2", "message": "Rendering failed"},
    ).to_status()
    assert status[part]["errors"] == [
        {"code": "1021", "errorMessage": "KNV1021: went wrong (source: a.yaml)"}
    ]
    assert status[part]["errorSummary"] == {
        "totalCount": 1,
        "truncated": False,
        "errorCountAfterTruncation": 1,
    }
    others = {"source", "rendering", "sync"} - {part}
    assert all(status[o]["errors"] == [] and status[o]["errorSummary"]["totalCount"] == 0 for o in others)
    assert status["source"]["commit"] == "c2" and status["lastSyncedCommit"] == "c1"
    assert status["sync"]["commit"] == ("c2" if part == "sync" else "c1")
    assert status["errors"][0]["code"] == "KNV1021"  # acm-lite's own list is unchanged


def test_status_errors_are_truncated_with_a_summary_and_acm_codes_kept() -> None:
    many = [_error("ACM1108")] * (MAX_PART_ERRORS + 5)
    part = SyncStatus(State.ERROR, commit="c", errors=many, stage="apply").to_status()["sync"]
    assert len(part["errors"]) == MAX_PART_ERRORS and part["errors"][0]["code"] == "ACM1108"
    assert part["errorSummary"] == {
        "totalCount": MAX_PART_ERRORS + 5,
        "truncated": True,
        "errorCountAfterTruncation": MAX_PART_ERRORS,
    }


def test_a_status_read_back_is_the_same_outcome_and_keeps_its_own_fields() -> None:
    status = SyncStatus(
        State.SYNCED,
        commit="c",
        synced_commit="c",
        source={"repo": "r", "revision": "main", "dir": "."},
        rendering={"commit": "c", "message": "Rendering succeeded"},
    )
    stored = copy.deepcopy(status.to_status())
    back = SyncStatus.from_status(stored)
    assert back.source == {"repo": "r", "revision": "main", "dir": "."}
    assert back.rendering == {"commit": "c", "message": "Rendering succeeded"}
    assert back.same_outcome(status) and back.to_status()["source"] == stored["source"]
    failed = SyncStatus.from_status(stored)
    failed.errors, failed.stage = [_error("KNV2009")], "apply"
    assert not failed.same_outcome(status)
