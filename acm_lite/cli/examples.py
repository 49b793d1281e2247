"""The examples every command's help ends with, one to three real invocations each (a unit test
parses every one of them with the command line's own parser). Keyed by the command's words."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "": [
        "acm-lite vet sample-repo",
        "acm-lite sync --once --repo https://git.example.com/platform/apps.git --revision main",
        "acm-lite -o json status    # or: acm-lite status -o json",
    ],
    "sync": [
        "acm-lite sync --once --repo https://git.example.com/platform/apps.git --revision main --dir prod",
        "acm-lite sync --once --repo ./sample-repo --cluster eks-prod --dry-run -o json",
        "acm-lite sync --once --fleet sample-repo/fleet.yaml --repo ./sample-repo --wait --timeout 5m",
    ],
    "diff": [
        "acm-lite diff --repo ./sample-repo --cluster eks-prod",
        "acm-lite diff --fleet sample-repo/fleet.yaml --repo ./sample-repo -o json",
    ],
    "preview": [
        "acm-lite preview --fleet sample-repo/fleet.yaml --base origin/main --head HEAD",
        "acm-lite preview --fleet fleet.yaml --base main --head pr-42 --offline --json-out report.json",
        "acm-lite preview --repo . --context eks-prod --base main -o json",
    ],
    "status": [
        "acm-lite status",
        "acm-lite status --resources --context eks-prod",
        "acm-lite status --name root-sync -o yaml",
    ],
    "serve": [
        "acm-lite serve --repo https://git.example.com/platform/apps.git --period 30",
        "acm-lite serve --from-cluster --leader-elect --metrics-address 0.0.0.0:9090",
        "acm-lite serve --fleet sample-repo/fleet.yaml --repo ./sample-repo",
        "acm-lite serve --repo https://git.example.com/platform/apps.git --admission-webhook",
    ],
    "migrate": [
        "acm-lite migrate root-sync.yaml --out rootsyncs.yaml",
        "acm-lite migrate --from-cluster --context gke-prod",
    ],
    "vet": [
        "acm-lite vet sample-repo",
        "acm-lite vet --path ./apps --source-format unstructured --no-api-server-check",
        "acm-lite vet sample-repo --clusters eks-prod,aks-staging -o json",
    ],
    "hydrate": [
        "acm-lite hydrate sample-repo --output compiled",
        "acm-lite hydrate --path ./apps --source-format unstructured --output compiled --flat",
    ],
    "policy": ["acm-lite policy verify policies/", "acm-lite policy test -f manifests/ -f policies/"],
    "policy verify": [
        "acm-lite policy verify policies/",
        "acm-lite policy verify policies/ my-policies/suite.yaml -o json",
    ],
    "policy test": [
        "acm-lite policy test -f manifests/ -f policies/templates/required-labels/",
        "cat deploy.yaml | acm-lite policy test -f my-policies/ -o json",
        "acm-lite policy test -f manifest.yaml --image registry.example.com/policies:v1 --deny-only",
    ],
    "fleet": [
        "acm-lite fleet list --fleet sample-repo/fleet.yaml",
        "acm-lite fleet status --fleet sample-repo/fleet.yaml",
    ],
    "fleet list": [
        "acm-lite fleet list --fleet sample-repo/fleet.yaml",
        "acm-lite fleet list --fleet sample-repo/fleet.yaml --cluster eks-prod -o json",
    ],
    "fleet status": [
        "acm-lite fleet status --fleet sample-repo/fleet.yaml",
        "acm-lite fleet status --fleet sample-repo/fleet.yaml --cluster eks-prod -o yaml",
    ],
    "dev": [
        "acm-lite dev up --clusters 2",
        'eval "$(acm-lite dev env)"',
        "acm-lite dev down",
    ],
    "dev build": ["acm-lite dev build", "acm-lite dev build kube-apiserver etcd"],
    "dev up": ["acm-lite dev up --clusters 3", "acm-lite dev up --fleet sample-repo/fleet.yaml --light"],
    "dev env": ['eval "$(acm-lite dev env)"', 'eval "$(acm-lite dev env --cluster dev-1)"'],
    "dev status": ["acm-lite dev status", "acm-lite dev status -o json"],
    "dev down": ["acm-lite dev down"],
    "errors": ["acm-lite errors", "acm-lite errors KNV1017", "acm-lite errors -o json"],
    "completion": [
        "acm-lite completion bash > ~/.local/share/bash-completion/completions/acm-lite",
        "echo 'eval \"$(acm-lite completion zsh)\"' >> ~/.zshrc",
        "acm-lite completion fish > ~/.config/fish/completions/acm-lite.fish",
    ],
}


def epilog(command: str) -> str | None:
    """The help's closing section for ``command`` (its words joined by spaces), or None."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)
