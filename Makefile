# Headwater — the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

AIRFLOW_VENV ?= .venv-airflow

.PHONY: e2e run ui test test-sqlite test-postgres bench-ingest bench-apply bench-import bench-load bench-explain bench-backfill bench-lineage openapi clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## Install, migrate and serve on http://localhost:5000 (embedded SQLite unless HEADWATER_DATABASE_URL / POSTGRES_HOST is set).
run: $(VENV)/.installed
	$(VENV)/bin/headwater serve

## Rebuild the web UI (ui/, needs Node.js 20 and npm) into app/ui/static, which is committed: `make run` needs no Node.
ui:
	cd ui && npm ci --no-audit --no-fund && npm run build

## The whole suite twice: on SQLite, then on a throwaway PostgreSQL server the run starts itself.
test: $(VENV)/.installed-dev
	@status=0; \
	echo "== tests on SQLite =="; HEADWATER_TEST_DB=sqlite $(PY) -m pytest $(PYTEST_ARGS) || status=1; \
	echo "== tests on PostgreSQL =="; HEADWATER_TEST_DB=postgres $(PY) -m pytest $(PYTEST_ARGS) || status=1; \
	exit $$status

test-sqlite: $(VENV)/.installed-dev
	HEADWATER_TEST_DB=sqlite $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-dev
	HEADWATER_TEST_DB=postgres $(PY) -m pytest $(PYTEST_ARGS)

## Ingest throughput over HTTP into Postgres, next to a raw-insert floor and the HTTP layer without the database (its ceiling), measured in the same run.
bench-ingest: $(VENV)/.installed-dev
	$(PY) -m bench.ingest $(BENCH_ARGS)

## The applier alone: the model built from 4,000 events already in the log (Postgres), CPU per event split between
## Python and PostgreSQL; BENCH_ARGS='--statements' lists where PostgreSQL's time went.
bench-apply: $(VENV)/.installed-dev
	$(PY) -m bench.apply $(BENCH_ARGS)

## `headwater import marquez-db` of 100,000 events from a Marquez-shaped table in a throwaway Postgres, next to the
## raw-insert floor measured in the same run, then the same import again (everything skipped as already stored).
bench-import: $(VENV)/.installed-dev
	$(PY) -m bench.import_ $(BENCH_ARGS)

## Zero loss under load: 16 clients, 20 s, against `headwater serve --workers 2` on a throwaway Postgres; checks
## every acknowledged event is stored once and the model equals a sequential re-ingest. A database restart in
## the middle: BENCH_ARGS='--restart-db-at 8 --down-seconds 3'.
bench-load: $(VENV)/.installed-dev
	$(PY) -m bench.load $(BENCH_ARGS)

## EXPLAIN every query the Marquez read endpoints run, on a throwaway Postgres; lists those with no index path.
bench-explain: $(VENV)/.installed-dev
	$(PY) -m bench.explain_reads

## Backfill plan time over a synthetic 1,000-job pipeline with 30 days of hourly runs, on Postgres.
bench-backfill: $(VENV)/.installed-dev
	$(PY) -m bench.backfill $(BENCH_ARGS)

## Lineage, column lineage and search latency on ~20,000 jobs / 40,000 datasets, at 20k and then 2M runs.
bench-lineage: $(VENV)/.installed-dev
	$(PY) -m bench.lineage $(BENCH_ARGS)

## Real Airflow end to end (not part of `make test`): a real Airflow 3 (api-server, scheduler, dag-processor;
## SQLite) with its OpenLineage and Postgres providers in their own virtualenv ($(AIRFLOW_VENV)) runs three DAGs
## for a week through its scheduler against a throwaway Postgres; Headwater checks lineage and runs, then runs a
## saved backfill plan through Airflow's REST API and checks every planned task instance was re-run, in order.
# Pinned to the versions last checked, so a new Airflow release cannot break CI unannounced.
AIRFLOW_PACKAGES ?= apache-airflow==3.3.2 apache-airflow-providers-openlineage==2.20.3 \
	apache-airflow-providers-postgres==7.1.1

# The stamp is written only once pip succeeded: an interrupted install is redone, not half used.
$(AIRFLOW_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet $(AIRFLOW_PACKAGES)
	touch $@

e2e: $(VENV)/.installed-dev $(AIRFLOW_VENV)/.installed
	AIRFLOW_VENV=$(AIRFLOW_VENV) $(PY) -m e2e.airflow

## Regenerate the checked-in OpenAPI document from the app.
openapi: $(VENV)/.installed
	$(PY) -m app.openapi_doc write

clean:
	rm -rf $(VENV) *.egg-info test-output .pytest_cache
