#!/usr/bin/env bash
# The quick start's main job: three local control planes standing in for a fleet (eks-prod,
# aks-staging, baremetal-edge), sample-repo/ synced to all of them from one Git commit — each
# cluster getting what its labels select — then the fleet's status.
set -euo pipefail
cd "$(dirname "$0")/.."
fleet=sample-repo/fleet.yaml

acm-lite dev down >/dev/null 2>&1 || true
acm-lite dev up --fleet "$fleet"
eval "$(acm-lite dev env)"          # KUBECONFIG with a context per cluster
echo "--- kubectl get --raw /version"
kubectl get --raw /version
echo

# sample-repo/ as its own Git repository, the way a platform team keeps its config repo
repo="${ACM_LITE_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/acm-lite}/demo-repo"
rm -rf "$repo" && mkdir -p "$repo" && cp -r sample-repo/. "$repo"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -qm "Platform config"

echo "--- acm-lite vet (every cluster of the fleet, Pod Security baseline enforced)"
acm-lite vet "$repo" --fleet "$fleet" --policy-bundle pod-security-baseline
echo "--- acm-lite sync --once --fleet"
acm-lite sync --once --fleet "$fleet" --repo "$repo" --revision main \
    --policy-bundle pod-security-baseline
echo "--- acm-lite fleet status"
acm-lite fleet status --fleet "$fleet"
echo "--- namespaces per cluster"
for cluster in eks-prod aks-staging baremetal-edge; do
  echo "$cluster: $(kubectl --context "$cluster" get namespaces -l app.kubernetes.io/managed-by=acm-lite \
      -o jsonpath='{.items[*].metadata.name}')"
done
echo "--- Deployments on eks-prod, rolled out by kube-controller-manager to kwok's fake nodes"
kubectl --context eks-prod wait --for=condition=Available deployments --all -A --timeout=120s >/dev/null
kubectl --context eks-prod get deployments -A
echo
echo "The clusters keep running. Use them with:  eval \"\$(acm-lite dev env)\"; kubectl --context eks-prod ..."
echo "Try: edit $repo, commit, then: acm-lite diff --fleet $fleet --repo $repo --revision main"
echo "Stop them with:                          acm-lite dev down   (or: make down)"
