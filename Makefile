# Two commands on a fresh machine: `make run` and `make test`. Each bootstraps its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench console clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## run Deskbridge on SQLite (sandbox PSA when none is configured)
	$(BIN)/deskbridge serve

console: $(STAMP)  ## the terminal surface
	$(BIN)/deskbridge console

test: $(STAMP)  ## the whole suite (SQLite; PostgreSQL too when DESKBRIDGE_TEST_DATABASE_URL is set)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff, the import-linter layer contracts and mypy (bot, core, connectors, store)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

typecheck: $(STAMP)  ## mypy over bot, core, connectors and store
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	for f in bench/*.py; do case $$f in */_*) ;; *) $(BIN)/python $$f || exit 1;; esac; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
