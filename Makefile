# Everything creates or reuses .venv itself: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
STORE ?= runs
EXP ?= baseline
PROFILE ?= tiny

.PHONY: setup run test lint image submit kind-test clean

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m runner local --exp $(EXP) --profile $(PROFILE) --store $(STORE)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check runner tests scripts
	$(VENV)/bin/ruff format --check runner tests scripts

clean:
	rm -rf $(VENV) build *.egg-info
