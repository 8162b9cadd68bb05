# Two commands for a newcomer: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?= -n 2

.PHONY: setup assets translations messages migrate seed run test worker lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Front-end assets come from the npm registry at set-up; nothing minified is committed.
static/vendor/htmx.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

assets: static/vendor/htmx.min.js

# Message catalogs are compiled at set-up; only the .po sources are committed.
translations: $(BIN)/.installed
	$(BIN)/pybabel compile --use-fuzzy -d translations -f >/dev/null

# After changing user-facing text: extract and merge, then translate the new entries.
messages: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations

setup: $(BIN)/.installed assets translations

migrate: setup
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo

run: seed
	@echo "Serving on http://$(HOST):$(PORT)/ (logins above)"
	$(FLASK) run --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

worker: migrate
	$(BIN)/huey_consumer portal.worker.queue --workers 2

lint: setup
	$(BIN)/ruff check portal tests

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
