# The README's two commands: `make demo` (the main job) and `make test` (lint, types, tests).
# Each creates .venv if absent and installs what it needs; torch is pinned by constraints.txt
# (any looser requirement pulls several GB of CUDA packages).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q -c constraints.txt
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Core install: what an edge device has (no torch).
$(VENV)/.core-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	touch $@

# Development install: core + train + ray + velodyne + dev extras + the example third-party plugin.
$(VENV)/.dev-installed: pyproject.toml constraints.txt examples/fusionrt-ultrasonic/pyproject.toml $(VENV)/.core-installed
	$(PIP) -e ".[train,ray,velodyne,dev]"
	$(PIP) --no-deps -e examples/fusionrt-ultrasonic
	touch $@

# The main job: replay the bundled sample drive through the full pipeline with the reference
# model on the embedded default backend (ONNX Runtime; no torch installed).
demo: $(VENV)/.core-installed
	$(BIN)/fusionrt run examples/pipelines/sample.yaml --source examples/drives/sample \
		--out out --report out/report.json

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(PY) -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis
