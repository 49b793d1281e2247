#!/usr/bin/env bash
# The quick start's main job: a local control plane, then sample-repo/ synced into it from a Git
# commit, then its status, as a platform team would see it.
set -euo pipefail
cd "$(dirname "$0")/.."

acm-lite dev down >/dev/null 2>&1 || true
acm-lite dev up
eval "$(acm-lite dev env)"
echo "--- kubectl get --raw /version"
kubectl get --raw /version
echo

# sample-repo/ as its own Git repository, the way a team keeps its config repo
repo="${ACM_LITE_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/acm-lite}/demo-repo"
rm -rf "$repo" && mkdir -p "$repo" && cp -r sample-repo/. "$repo"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -qm "Platform config"

echo "--- acm-lite vet"
acm-lite vet "$repo" --policy-bundle pod-security-baseline
echo "--- acm-lite sync --once (as cluster eks-prod)"
acm-lite sync --once --repo "$repo" --revision main --cluster eks-prod --policy-bundle pod-security-baseline
echo "--- acm-lite status"
acm-lite status
echo "--- kubectl get namespaces -l app.kubernetes.io/managed-by=acm-lite"
kubectl get namespaces -l app.kubernetes.io/managed-by=acm-lite
echo
echo "The cluster keeps running. Use it with:  eval \"\$(acm-lite dev env)\""
echo "Try: edit $repo, commit, then acm-lite diff / acm-lite sync --once with the same flags."
echo "Stop it with:                          acm-lite dev down   (or: make down)"
