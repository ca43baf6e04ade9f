# The two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := app.py

.PHONY: run test lint format bench lock translations clean-venv

$(STAMP): requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

translations: $(STAMP)
	$(BIN)/pybabel compile --statistics -d canteen/translations -D messages

## make run: migrate the SQLite database, load the demo city if empty, serve on $(HOST):$(PORT)
run: $(STAMP) translations
	CANTEEN_ENV=$${CANTEEN_ENV:-development} $(BIN)/flask db upgrade
	CANTEEN_ENV=$${CANTEEN_ENV:-development} $(BIN)/flask demo load --if-empty
	CANTEEN_ENV=$${CANTEEN_ENV:-development} $(BIN)/flask run --host $(HOST) --port $(PORT)

## make test: lint, then the whole suite on SQLite and on a PostgreSQL server the suite starts
test: $(STAMP) translations lint
	$(BIN)/python -m tests.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench

## make lock: re-resolve requirements.in into requirements.lock (needs network to PyPI)
lock:
	rm -rf /tmp/canteen-lock && $(PYTHON) -m venv /tmp/canteen-lock
	/tmp/canteen-lock/bin/pip install --quiet -r requirements.in
	( echo "# Exact versions tested; installed by make. Regenerate: make lock"; \
	  /tmp/canteen-lock/bin/pip freeze ) > requirements.lock

clean-venv:
	rm -rf $(VENV)
