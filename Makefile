# EvalHub: `make demo` serves the demo, `make test` runs every check CI runs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Dev/CI take the CPU build of torch that lies on this disk; requirements.txt keeps
# its range open so GPU machines install their CUDA build instead.
TORCH_PIN ?= torch==2.13.0
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),)

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
DEMO_HOST ?= 127.0.0.1:8000

.PHONY: install demo serve test lint test-sqlite test-postgres services browser screenshots clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(FIND_LINKS) "$(TORCH_PIN)"
	$(PY) -m pip install --quiet $(FIND_LINKS) -r requirements-dev.txt
	@touch $@

demo: install .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	DEMO_HOST=$(DEMO_HOST) PY=$(PY) bash scripts/serve.sh

# Local development's environment, written once and never overwritten: with DEBUG=1 every
# `manage.py` command runs as the README shows it (evalhub.env.load_env_file).
.env:
	@printf '%s\n' '# Local development only (written by make demo). A deployment sets its' \
		'# variables in the environment and has no .env; the environment wins over this file.' \
		'DEBUG=1' > $@
	@echo "Wrote .env (DEBUG=1, local development): manage.py commands run as the README shows."

serve: install
	DEMO_HOST=$(DEMO_HOST) PY=$(PY) bash scripts/serve.sh

# ruff, then the import contracts of pyproject.toml (layers, training without Django, no loops).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Browser tests drive Debian's Chromium (test tools cannot download their own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Every page at a phone's size and a laptop's, from a private demo served as production
# would serve it (scripts/screenshots.py).
screenshots: install browser
	$(PY) scripts/screenshots.py --out var/screenshots

services: install
	$(PY) scripts/check_services.py --database-url "$(TEST_DATABASE_URL)" --redis-url "$(TEST_REDIS_URL)"

# The embedded configuration: SQLite and the filesystem broker.
test-sqlite: install browser
	DEBUG=1 $(VENV)/bin/pytest -m "not redis"

# The production configuration: every test that touches the database, again on
# PostgreSQL, plus a real worker on Redis. The browser tests run once, in test-sqlite:
# they test the pages; what differs between the databases lies under the pages, and the
# tests of the services, the API and the races run here again.
test-postgres: install services
	DEBUG=1 DATABASE_URL="$(TEST_DATABASE_URL)" DATABASE_CONN_MAX_AGE=0 $(VENV)/bin/pytest tests \
		--ignore=tests/training -m "not browser" --redis-url "$(TEST_REDIS_URL)"

test: lint services browser test-sqlite test-postgres

clean:
	rm -rf $(VENV) var
