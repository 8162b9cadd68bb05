# Two commands for a newcomer: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?= -n 2
# localstripe (a Stripe fake from PyPI, GPL-3.0, never vendored) for the offline demo.
LOCALSTRIPE_PORT ?= 8420
LOCALSTRIPE    := http://127.0.0.1:$(LOCALSTRIPE_PORT)
DEMO_STRIPE_ENV := STRIPE_SECRET_KEY=$${STRIPE_SECRET_KEY:-sk_test_demo} \
	STRIPE_PUBLISHABLE_KEY=$${STRIPE_PUBLISHABLE_KEY:-pk_test_demo} \
	STRIPE_WEBHOOK_SECRET=$${STRIPE_WEBHOOK_SECRET:-whsec_demo} \
	STRIPE_API_BASE=$${STRIPE_API_BASE:-$(LOCALSTRIPE)} \
	STRIPE_JS_URL=$${STRIPE_JS_URL:-$(LOCALSTRIPE)/js.stripe.com/v3/}

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

# Serves the portal with localstripe on 127.0.0.1 so "Add card" works offline; set the
# STRIPE_* variables yourself to use a real Stripe test account instead.
# E-mails go to a catching SMTP server on 127.0.0.1:1025 that prints them (unless SMTP_URL
# points elsewhere).
run: seed
	@echo "Serving on http://$(HOST):$(PORT)/ (logins above); localstripe on $(LOCALSTRIPE); one job worker; e-mails printed by a local SMTP catcher"
	@$(BIN)/python -m portal.devtools.localstripe --port $(LOCALSTRIPE_PORT) \
		--webhook-url http://$(HOST):$(PORT)/webhooks/stripe \
		--webhook-secret $${STRIPE_WEBHOOK_SECRET:-whsec_demo} & \
	LS_PID=$$!; \
	$(BIN)/python -m aiosmtpd -n -l 127.0.0.1:1025 & \
	SMTP_PID=$$!; \
	$(DEMO_STRIPE_ENV) $(FLASK) worker & \
	WORKER_PID=$$!; trap 'kill $$LS_PID $$SMTP_PID $$WORKER_PID 2>/dev/null' EXIT INT TERM; \
	$(DEMO_STRIPE_ENV) $(FLASK) run --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory coverage-domain

# portal/domain (money, tax, pricing, totals) must stay at 100 % line and branch coverage.
.PHONY: coverage-domain
coverage-domain: $(BIN)/.installed
	$(BIN)/pytest -q -p no:cacheprovider tests/domain --cov=portal.domain --cov-branch --cov-report=term-missing --cov-fail-under=100

worker: migrate
	$(FLASK) worker --workers 2

# Style and import order (ruff), then the type check of portal/ ([tool.mypy] in pyproject.toml).
lint: setup
	$(BIN)/ruff check portal tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache

# Performance figures against baselines of the same run (bench/run.py; local PostgreSQL,
# database bench_portal, generated once; wrk from Debian is installed if missing).
.PHONY: bench
bench: $(BIN)/.installed translations
	$(BIN)/python -m bench.run
