from __future__ import annotations

from acm_lite.devcluster import gobuild

GOMOD = """module k8s.io/kubernetes

go 1.25.0

require (
\tgithub.com/spf13/cobra v1.9.1
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
\tgithub.com/example/fork v1.2.0 => github.com/example/fork-fixed v1.2.1
)

replace github.com/other/lib => github.com/other/lib v0.3.0
"""


def test_staging_modules_map_to_their_published_versions() -> None:
    assert gobuild.staging_replacements(GOMOD, "v0.37.2") == [
        ("k8s.io/api", "k8s.io/api@v0.37.2"),
        ("k8s.io/client-go", "k8s.io/client-go@v0.37.2"),
        ("k8s.io/cri-streaming", "k8s.io/cri-streaming@v0.37.2"),
    ]


def test_other_replace_lines_are_carried_over() -> None:
    assert gobuild.other_replacements(GOMOD) == [
        ("github.com/example/fork@v1.2.0", "github.com/example/fork-fixed@v1.2.1"),
        ("github.com/other/lib", "github.com/other/lib@v0.3.0"),
    ]


def test_version_flags_set_both_version_packages() -> None:
    flags = gobuild._kubernetes_ldflags("v1.37.2")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.37.2" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=37" in flags
        assert f"-X {pkg}.gitTreeState=clean" in flags


def test_kustomize_version_is_stamped_into_its_provenance() -> None:
    flags = gobuild.kustomize_ldflags("v5.8.2")
    assert "-X sigs.k8s.io/kustomize/api/provenance.version=v5.8.2" in flags
    assert "-X sigs.k8s.io/kustomize/api/provenance.buildDate=" in flags
