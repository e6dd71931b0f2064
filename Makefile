# Two commands matter: `make run` (the platform with demo data) and `make test` (the whole gate).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# Tests run against PostgreSQL and Redis on localhost unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/feedback
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
TEST_ENV := SECRET_KEY=test-only-secret-key-not-for-production DATABASE_URL=$(TEST_DATABASE_URL) \
	CELERY_BROKER_URL=$(TEST_BROKER_URL) STATIC_MANIFEST=false

CHROMIUM ?= /usr/bin/chromium

.PHONY: setup run test lint typecheck migrations-check pytest browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Without DATABASE_URL / CELERY_BROKER_URL: SQLite and the filesystem broker under var/.
run: setup
	mkdir -p var
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG:-true} HOST=$(HOST) PORT=$(PORT) platform/run-dev.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(TEST_ENV) $(BIN)/mypy .

migrations-check: setup
	$(TEST_ENV) DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
	  $(BIN)/python manage.py makemigrations --check --dry-run

# The browser tests drive Debian's Chromium (Playwright can't download its own here).
browser:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Chromium for the browser tests (apt-get)…"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

pytest: setup browser
	$(TEST_ENV) CHROMIUM=$(CHROMIUM) $(BIN)/pytest

test: lint typecheck migrations-check pytest

clean:
	rm -rf var/db.sqlite3* var/broker
