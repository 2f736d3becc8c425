# Entry points.  `make reproduce` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SNAKEMAKE := $(BIN)/snakemake
CONFIG ?= config/config.yaml
PROFILE ?= slurm

.PHONY: setup reproduce report test test-fast lint dry-run paper paper-tier data verify bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "error: Python 3.11 is required (found $$($(PYTHON) --version 2>&1) at '$(PYTHON)'); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
	  { echo "error: could not create $(VENV); on Debian/Ubuntu install the venv module: apt-get install python3.11-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## Run the default tier end to end and build results/report.html.
reproduce: $(STAMP)
	$(SNAKEMAKE) --cores all --configfile $(CONFIG)
	$(SNAKEMAKE) --cores all --configfile $(CONFIG) --report results/report.html
	@$(BIN)/python -m repro.report.summary results/tables

## Rebuild only the HTML report from existing results.
report: $(STAMP)
	$(SNAKEMAKE) --cores all --configfile $(CONFIG) --report results/report.html

## The full test suite (unit + workflow tests on the test tier).
test: $(STAMP)
	$(BIN)/python -m pytest

## Unit tests only (no Snakemake runs).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not workflow"

lint: $(STAMP)
	$(SNAKEMAKE) --lint --configfile $(CONFIG)
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check src tests workflow/scripts
	$(BIN)/ruff format --check src tests workflow/scripts

dry-run: $(STAMP)
	$(SNAKEMAKE) -n --configfile $(CONFIG)

## One paper only, e.g. `make paper PAPER=heavy_ball`.
paper: $(STAMP)
	$(SNAKEMAKE) results/papers/$(PAPER).done --cores all --configfile $(CONFIG)

## The paper tier on a cluster through a profile's executor plugin, e.g.
## `make paper-tier PROFILE=slurm` (or kubernetes); `ARGS=-n` for a dry run.  The cluster
## profile replaces profiles/default (loaded as the workflow profile), see README "On a cluster".
paper-tier: CONFIG = config/paper.yaml
paper-tier: $(STAMP)
	$(SNAKEMAKE) --configfile $(CONFIG) --workflow-profile profiles/$(PROFILE) $(ARGS)

## Download and prepare this tier's data only.
data: $(STAMP)
	$(SNAKEMAKE) data --cores all --configfile $(CONFIG)

## Re-hash every downloaded artifact and extracted file against resources/manifest/.
verify: $(STAMP)
	$(BIN)/python -m repro.data.verify --resources resources

## Time every kernel (reference and Triton) on this machine's device.
bench: $(STAMP)
	$(BIN)/python -m repro.bench kernels --out benchmarks/kernels.parquet

clean:
	rm -rf results logs benchmarks .snakemake
