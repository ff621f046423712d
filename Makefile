# Everyday commands. Everything runs from a local virtual environment that is
# (re)built whenever pyproject.toml changes or a package's __init__.py appears.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# An editable install records which packages existed when it ran (a folder without
# __init__.py is taken for a namespace package), so reinstall when a package marker appears.
PACKAGE_MARKERS := $(wildcard graphc/__init__.py passes/__init__.py kernels/__init__.py runtime/__init__.py)

.PHONY: install test test-all test-bounds test-gpu demo lint format bench bench-compile bench-steps bench-gpu clean

install: $(STAMP)

$(STAMP): pyproject.toml $(PACKAGE_MARKERS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install -e '.[dev,examples]'
	touch $@

# CI's suite: everything but the slow tests, then the CUDA tests on numba's CUDA simulator
# (a second run: numba reads NUMBA_ENABLE_CUDASIM when it is imported), then the CPU
# kernel tests again with numba's bounds checks (test-bounds, below). `make test-all`
# adds the slow tests; `make test-gpu` runs the CUDA tests on a real GPU.
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m "not slow and not cuda" tests
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m "cuda and not slow" -W "ignore::RuntimeWarning" tests
	$(BOUNDS_CHECKED)

test-all: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m "not cuda" tests
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m cuda -W "ignore::RuntimeWarning" tests

# The CPU kernel tests (the op table, arrays, nn, vmath) compiled with numba's bounds
# checks, from empty caches (numba's cache does not tell code compiled with the checks
# from code compiled without): any out-of-bounds read or write raises IndexError.
BOUNDS_CACHE := build/bounds-cache
BOUNDS_CHECKED = rm -rf $(BOUNDS_CACHE) && \
	NUMBA_BOUNDSCHECK=1 GRAPHC_CACHE_DIR=$(BOUNDS_CACHE)/graphc NUMBA_CACHE_DIR=$(BOUNDS_CACHE)/numba \
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m "not cuda" tests/kernels && \
	rm -rf $(BOUNDS_CACHE)

test-bounds: install
	$(BOUNDS_CHECKED)

test-gpu: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m cuda tests

DEMO_DIR := build/demo

# trains and saves the digits model, then evaluates the saved file in a new process
demo: install
	$(BIN)/python examples/quickstart.py
	$(BIN)/python examples/train_digits.py $(DEMO_DIR)
	@echo "--- the saved model, run by the graphc command in a fresh process:"
	$(BIN)/graphc run $(DEMO_DIR)/digits.graphc --input x=$(DEMO_DIR)/test_images.npy --input y=$(DEMO_DIR)/test_labels.npy

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

# The peers the benchmarks compare graphc with (torch 2.13.0 CPU, jax, onnxruntime: the
# `bench` extra) go into the venv only for the bench targets, never for install or test.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -e '.[dev,examples,bench]'
	touch $@

# W1-W8 of PERFORMANCE.md: W1-W6 against numpy eager, torch eager, jax.jit and
# onnxruntime, with the physical limits, then the W7 and W8 training steps against torch
# eager, torch.compile and jax.jit, at 1 and 2 threads; `make bench BENCH_ARGS=--quick`
# for a short run, BENCH_ARGS="--only W7,W8" for some workloads.
BENCH_ARGS ?=

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# cold and warm first calls (chain, W5, W7, W8) against jax.jit
bench-compile: $(BENCH_STAMP)
	$(BIN)/python bench/compile_time.py $(BENCH_ARGS)

# the steady W7 and W8 training steps against PyTorch eager, torch.compile and jax.jit
# (in the venv; BENCH_ARGS="--peer-python PATH" names another python that has them).
bench-steps: $(BENCH_STAMP)
	$(BIN)/python bench/steps.py $(BENCH_ARGS)

# the workloads on an NVIDIA GPU against PyTorch CUDA (needs graphc[cuda] and torch)
bench-gpu: install
	$(BIN)/python bench/gpu.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
