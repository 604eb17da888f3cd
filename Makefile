# Two commands on a fresh machine (Python 3.11): `make quick` sets everything up and runs the main job,
# `make test` sets everything up and runs the lint and the tests. The first creates .venv with the CPU torch
# (pinned, installed first so that the project's torch requirement is already met and pip pulls no CUDA
# build); later runs reuse it and reinstall the project only when pyproject.toml changed.

PYTHON ?= python3
TORCH ?= torch==2.13.0
TORCH_ARGS ?=# extra pip arguments for torch, e.g. an --index-url of CPU-only wheels
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: quick test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_ARGS) $(TORCH)

$(VENV)/.project: $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.project

quick: $(VENV)/.project
	$(VENV)/bin/swin-lit ablate ablations/quick.yaml --out runs/quick

# pytest's exit code 5 (no test collected) fails like any other failure.
test: $(VENV)/.test
	$(VENV)/bin/ruff check swin_lit tests benchmarks
	@$(PY) -m pytest -q; code=$$?; \
	if [ $$code = 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$code
