"""Regenerate acm_lite/data/builtin_kinds.json from a real kube-apiserver's discovery.

Run: .venv/bin/python hack/gen_builtin_kinds.py  (starts and stops a local control plane)
"""

from __future__ import annotations

import json
from pathlib import Path

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from acm_lite.devcluster import binaries, controlplane

OUT = Path(__file__).resolve().parents[1] / "acm_lite" / "data" / "builtin_kinds.json"


def main() -> None:
    env = controlplane.start(
        ["discovery"],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    try:
        api = config.new_client_from_config(config_file=env.clusters[0].kubeconfig)
        dyn = DynamicClient(api)
        kinds = []
        groups = [("", "v1", True)]
        for group in client.ApisApi(api).get_api_versions().groups:
            preferred = group.preferred_version.version
            groups += [(group.name, v.version, v.version == preferred) for v in group.versions]
        for group, version, preferred in groups:
            path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
            data = json.loads(dyn.request("get", path, serialize=False).data)
            for res in data["resources"]:
                if "/" in res["name"]:
                    continue  # subresources
                kinds.append(
                    {
                        "group": group,
                        "version": version,
                        "kind": res["kind"],
                        "plural": res["name"],
                        "namespaced": res["namespaced"],
                        "preferred": preferred,
                    }
                )
        version = client.VersionApi(api).get_code().git_version
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps({"kubernetesVersion": version, "kinds": kinds}, indent=1) + "\n")
        print(f"wrote {len(kinds)} kinds of {version} to {OUT}")
    finally:
        controlplane.stop(env)


if __name__ == "__main__":
    main()
