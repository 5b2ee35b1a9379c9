# vssl: set up a virtual environment, train, test.
#   make train   # venv + install + `vssl train recipes/sigma.yaml` on the embedded data
#   make test    # venv + install + the whole test suite (what CI runs)
#
# TORCH pins the CPU build of torch on machines without a GPU; on a GPU machine run
# `make setup TORCH=torch` (or install the torch build you want first).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
RECIPE ?= recipes/sigma.yaml
BIN := $(VENV)/bin

.PHONY: setup train test lint docs clean

$(BIN)/vssl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/vssl

train: setup
	$(BIN)/vssl train $(RECIPE)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

docs: setup
	$(BIN)/python -m vssl_core.cli.docs

clean:
	rm -rf $(VENV) runs build *.egg-info
