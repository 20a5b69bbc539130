# The two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint format install

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		echo "python3 -m venv failed; installing Debian's python3-venv"; \
		apt-get install -y -q python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m crm.manage prepare
	$(PY) app.py

test: install
	$(PY) -m pytest

# Each benchmark prints one JSON object. PostgreSQL and RabbitMQ when CRM_BENCH_DATABASE_URL and
# CRM_BENCH_AMQP_URL are set (see bench/README.md); SQLite and the in-process bus otherwise.
bench: install
	$(PY) bench/search.py
	$(PY) bench/ring.py
	$(PY) bench/screen_pop.py
	$(PY) bench/outbox.py
	$(PY) bench/requests.py
	$(PY) bench/payments.py
	$(PY) bench/audit.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
