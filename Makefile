# Two commands a newcomer needs: `make run` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SPEC ?= sweeps/quick.yaml
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lrsweep run $(SPEC)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/optimizer_step.py
	$(BIN)/python benchmarks/trainable_overhead.py
	$(BIN)/python benchmarks/sweep_efficiency.py
	$(BIN)/python benchmarks/population.py

clean:
	rm -rf $(VENV) results .pytest_cache
