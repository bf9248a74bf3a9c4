# Two commands on a fresh machine: `make demo` and `make test` (both install what they need first).
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_output

.PHONY: install demo test lint bench clean services services-stop

install:
	bash scripts/install.sh

demo: install
	$(PY) -m pyiron_mlip_tradeoff.cli demo --output $(DEMO_DIR)

test: install
	$(VENV)/bin/ruff check pyiron_mlip_tradeoff tests benchmarks notebooks
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check pyiron_mlip_tradeoff tests benchmarks notebooks

bench: install
	$(PY) benchmarks/ladder_cost.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

services:
	bash scripts/services.sh start

services-stop:
	bash scripts/services.sh stop
