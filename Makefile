# vssl: set up a virtual environment, train, test.
#   make train   # venv + install + `vssl train recipes/sigma.yaml` on the embedded data
#   make test    # venv + install + the whole test suite (what CI runs)
#
# EXTRAS picks the optional parts: CI uses `make test EXTRAS=dev,ffcv,decord` (ffcv needs
# `apt-get install pkg-config libopencv-dev libturbojpeg0-dev` first; see .ci/run).
# PYTEST_ARGS selects tests, e.g. PYTEST_ARGS="-m extras" (what an extra changes) or "-m 'not slow'".
# PYTEST_WORKERS: test processes at once (pytest-xdist; auto: one per core, 0: none, in this one).
# TORCH pins the CPU build of torch on machines without a GPU; on a GPU machine run
# `make setup TORCH=torch` (or install the torch build you want first).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
RECIPE ?= recipes/sigma.yaml
EXTRAS ?= dev
VSSL_REQUIRE ?=
PYTEST_ARGS ?=
PYTEST_WORKERS ?= auto
RUNS ?=
BIN := $(VENV)/bin

.PHONY: setup train test lint docs clean FORCE

# The venv remembers what it was built with (.venv/.vssl-setup: TORCH and EXTRAS); a make with
# other ones installs them into it (pip leaves what is already satisfied alone), so
# `make train` then `make test EXTRAS=dev,ffcv,decord` gets the extras.
SETUP_ARGS := TORCH=$(TORCH) EXTRAS=$(EXTRAS)
STAMP := $(VENV)/.vssl-setup

$(VENV)/.vssl-args: FORCE
	@mkdir -p $(VENV)
	@echo '$(SETUP_ARGS)' | cmp -s - $@ || echo '$(SETUP_ARGS)' > $@

$(STAMP): pyproject.toml $(VENV)/.vssl-args
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet "$(TORCH)" numpy
	$(BIN)/pip install --quiet --no-build-isolation -e ".[$(EXTRAS)]"
	cp $(VENV)/.vssl-args $@

setup: $(STAMP)

# RUNS (optional) puts the run directory under another folder than the recipe's (runs/)
train: setup
	$(BIN)/vssl train $(RECIPE) $(if $(RUNS),run.output_root=$(RUNS))

# decord's tests run in a process of their own: importing decord breaks PyAV's VP9 encoder
test: setup
	VSSL_REQUIRE=$(VSSL_REQUIRE) $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)
	if $(BIN)/python -c "import decord" 2>/dev/null; then \
	  VSSL_TEST_DECORD=1 $(BIN)/python -m pytest -q tests/plugins/decoders; fi

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

docs: setup
	$(BIN)/python -m vssl_core.cli.docs

clean:
	rm -rf $(VENV) runs build *.egg-info
