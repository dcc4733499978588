# Everything creates or reuses .venv itself: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
STORE ?= runs
EXP ?= baseline
PROFILE ?= tiny

.PHONY: setup run smoke sweep test test-unit test-integration test-e2e test-fast lint lock image submit kind-test clean

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m runner local --exp $(EXP) --profile $(PROFILE) --store $(STORE)
	$(PY) -m runner summarize --store $(STORE)

# a smoke run: [smoke] of experiments.toml over the profile (10 iterations, a small evaluation), its own run id
smoke: $(STAMP)
	$(PY) -m runner local --exp $(EXP) --profile $(PROFILE) --store $(STORE) --smoke

# the whole matrix of a profile here (every experiment x [sweep] seeds), then the summary; PARALLEL=N processes
PARALLEL ?= 1
sweep: $(STAMP)
	$(PY) -m runner sweep --profile $(PROFILE) --store $(STORE) --parallel $(PARALLEL)

# The tests come in tiers (fixtures in tests/conftest.py, helpers in tests/support): tests/unit is pure logic (no
# model, no training step, no server, no run; under a minute: the inner loop), tests/integration builds models and
# trains in-process and talks to the loopback S3 server and the fake Kubernetes API, tests/e2e runs the CLI in a
# subprocess end to end (and the kind test). `make test` runs every tier: it is the CI command (.ci/run).
test: $(STAMP)
	$(PY) -m pytest -q

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

# everything but the end-to-end runs (marked slow) and the kind cluster test
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not kind"

lint: $(STAMP)
	$(VENV)/bin/ruff check runner tests scripts requirements
	$(VENV)/bin/ruff format --check runner tests scripts requirements

# The worker image's lock file: exact versions and hashes of every dependency, for CPython 3.11 on linux x86_64,
# with torch and torchvision at the versions tested here (requirements/pins.txt). Run it after changing pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--generate-hashes --index-url https://pypi.org/simple --constraint requirements/pins.txt \
		-o requirements/worker.lock

# The worker image: VARIANT=cuda (default) or cpu (kind tests); tagged with the git revision (-dirty when
# the work tree has changes). Push it and set [cluster] image, or pass IMAGE=... to `make submit`.
DOCKER ?= docker
VARIANT ?= cuda
IMAGE_NAME ?= clel-runner
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)$(if $(filter cpu,$(VARIANT)),-cpu)

image:
	$(DOCKER) build --build-arg VARIANT=$(VARIANT) -t $(IMAGE_NAME):$(IMAGE_TAG) .
	@echo "built $(IMAGE_NAME):$(IMAGE_TAG)"

submit: $(STAMP)
	$(PY) -m runner submit $(if $(IMAGE),--image $(IMAGE))

kind-test: $(STAMP)
	$(PY) -m pytest -m kind -v -rs tests/e2e/test_kind.py

clean:
	rm -rf $(VENV) build *.egg-info
