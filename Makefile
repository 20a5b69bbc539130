# The two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint format install cluster chaos

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

# N app processes on PostgreSQL + RabbitMQ behind HAProxy on http://127.0.0.1:8080 (crm/cluster.py; README,
# «Cluster»). CRM_DATABASE_URL / CRM_AMQP_URL pick the servers; haproxy is installed if missing.
N ?= 3
cluster: install
	$(PY) -m crm.cluster --nodes $(N)

# Faults survived, measured (bench/chaos.py): a 3-process cluster whose database and broker connections go
# through cuttable proxies; one JSON object. CRM_CHAOS_DATABASE_URL (a database it owns) / CRM_CHAOS_AMQP_URL.
chaos: install
	$(PY) bench/chaos.py

# Each benchmark prints one JSON object. PostgreSQL and RabbitMQ when CRM_BENCH_DATABASE_URL and
# CRM_BENCH_AMQP_URL are set (see bench/README.md); SQLite and the in-process bus otherwise.
bench: install
	$(PY) bench/search.py
	$(PY) bench/ring.py
	$(PY) bench/screen_pop.py
	$(PY) bench/dashboard.py
	$(PY) bench/cluster.py
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
