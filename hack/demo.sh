#!/usr/bin/env bash
# The quick start's main job: a local control plane, and a smoke check that it is a real cluster.
set -euo pipefail

acm-lite dev down >/dev/null 2>&1 || true
acm-lite dev up
eval "$(acm-lite dev env)"

echo "--- kubectl get --raw /version"
kubectl get --raw /version
echo
echo "--- server-side apply of a ConfigMap"
kubectl apply --server-side --field-manager=acm-lite -f - <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: acm-lite-smoke
  namespace: default
data:
  hello: world
YAML
kubectl get configmap acm-lite-smoke -o jsonpath='{.metadata.managedFields[0].manager}{"\n"}'
echo
echo "The cluster keeps running. Use it with:  eval \"\$(acm-lite dev env)\""
echo "Stop it with:                          acm-lite dev down   (or: make down)"
