"""The CRDs acm-lite ships carry the hash of their spec, by which an installation tells them from
an older acm-lite's (status.store.install updates a CRD whose hash differs)."""

from __future__ import annotations

import copy

from acm_lite import api


def test_each_shipped_crd_records_the_hash_of_its_spec() -> None:
    for crd in api.crds():
        recorded = crd["metadata"]["annotations"][api.CRD_HASH_ANNOTATION]
        assert recorded == api.crd_hash(crd), (
            f"update {api.CRD_HASH_ANNOTATION} of {crd['metadata']['name']} (in acm_lite/data/crds and "
            f"charts/acm-lite/crds) to {api.crd_hash(crd)}"
        )


def test_the_hash_follows_the_schema_and_not_the_metadata() -> None:
    rootsync = next(c for c in api.crds() if c["spec"]["names"]["kind"] == "RootSync")
    relabelled = copy.deepcopy(rootsync)
    relabelled["metadata"]["labels"]["extra"] = "yes"
    assert api.crd_hash(relabelled) == api.crd_hash(rootsync)
    older = copy.deepcopy(rootsync)
    properties = older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    properties["sourceType"]["enum"] = ["git"]
    assert api.crd_hash(older) != api.crd_hash(rootsync)
