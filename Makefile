# servegym: the two commands of README, plus helpers. Everything runs inside .venv (created on demand).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_CORE := $(VENV)/.installed-core
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run examples test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# torch==2.13.0 is pinned in the rl extra: pip takes the CPU build from local disk, never a CUDA download.
# The ray extra is installed too: the test suite starts a real Ray cluster on loopback.
$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,rl,ray]'
	touch $@ $(STAMP_CORE)

## The main job: evaluate the baselines on the shipped Azure-calibrated default day, print the table, write the plot
## (into the git-ignored runs/evaluate; the committed copy in results/ is written by `make examples`).
run: $(STAMP_CORE)
	$(BIN)/servegym evaluate --out runs/evaluate

## Regenerate the committed example results (results/evaluate, results/week) and record the commit that wrote them.
examples: $(STAMP_CORE)
	$(BIN)/python scripts/regenerate_examples.py

## The default test suite (fast; slow tests are marked and excluded).
test: $(STAMP_DEV)
	$(BIN)/python -m pytest -q

test-all: $(STAMP_DEV)
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
