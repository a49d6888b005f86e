# Two commands: `make demo` (a default scan on the embedded local Ray, then a report)
# and `make test` (the CI test suite). Each creates .venv and installs what it needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
OUT     ?= results/demo
# two test processes (the machine's two cores; Ray's tests on one of them, see
# tests/conftest.py)
PYTEST_ARGS ?= -m "not slow" -n 2 --dist loadgroup --durations=15

.PHONY: demo test test-all bench gpu-check venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an open-ended requirement would pull a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/relu-landscape scan --preset demo --out $(OUT) --resume
	$(BIN)/relu-landscape report $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

bench: $(STAMP)
	$(BIN)/relu-landscape bench

# CUDA against CPU on a GPU machine (one JSON line; docs in relu_landscape/gpu_check.py).
gpu-check: $(STAMP)
	$(BIN)/python -m relu_landscape.gpu_check

clean:
	rm -rf results .pytest_cache
