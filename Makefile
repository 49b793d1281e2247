# The two commands of the quick start are `make demo` and `make test`; everything else serves them.
# Python packages go into .venv (pip's download cache lives outside the checkout); the Kubernetes,
# etcd, helm and kustomize binaries are built once into ~/.cache/acm-lite (see
# `acm-lite dev build --help`).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# `make test` runs the suite in two pytest-xdist workers (see tests/conftest.py for how tests are
# grouped so each control plane starts once); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

.PHONY: setup binaries lint test test-unit demo down clean image image-push image-lock

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

binaries: setup
	$(BIN)/acm-lite dev build

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test: lint binaries
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The daemon's OCI image, built without a container engine (buildah, mmdebstrap; as root): see
# README's Image section. IMAGE names the registry, repository and tag to push to.
IMAGE ?=
TLS_VERIFY ?= true

image: setup  # builds kustomize and helm into the binary cache when they are not there yet
	$(BIN)/python hack/image.py build

image-push: setup
	@test -n "$(IMAGE)" || { echo "usage: make image-push IMAGE=registry/name:tag [TLS_VERIFY=false]"; exit 2; }
	$(BIN)/python hack/image.py push "$(IMAGE)" --tls-verify=$(TLS_VERIFY)

image-lock: setup
	$(BIN)/python hack/image.py lock

demo: binaries
	PATH="$(CURDIR)/$(BIN):$$PATH" bash hack/demo.sh

down: setup
	$(BIN)/acm-lite dev down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
