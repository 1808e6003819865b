# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench docs clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is pinned to the CPU build first, so that nothing pulls a multi-GB CUDA build;
# the library declares torch>=2.1 as an optional extra.
$(VENV)/.installed: pyproject.toml $(BIN)/activate
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

## demo: xi and CODEC of each feature of a bundled data set, as a table
demo: $(VENV)/.installed
	$(BIN)/python -m chatterjee demo

## test: the whole test suite (GPU tests skip without a GPU)
test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

## bench: speed against peers (installs them first)
bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_core.py

## docs: the documentation site, examples run, in docs/_build/html (installs the docs extra)
docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -b html -W --keep-going docs docs/_build/html
	@echo "open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis docs/_build docs/auto_examples docs/api/generated \
		docs/api/regularize.rst docs/api/unlearn.rst docs/sg_execution_times.rst
