# medmkt — the commands a data team needs. Everything runs from the repo-local .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: catalogs setup setup-spark setup-team team-up team-down team-run spark-cluster spark-cluster-stop run test dev app demo-data bench contract-check clean

setup: $(STAMP)  ## create .venv and install medmkt with its test tools

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup-spark: setup  ## add PySpark for MEDMKT_ENGINE=spark (a Java 17+ runtime is needed for a local Spark)
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"

setup-team: setup  ## add dagster-postgres, psycopg2 and Authlib for the team deployment (PostgreSQL itself: apt-get install postgresql)
	$(BIN)/python -m pip install --quiet -e ".[dev,team]"

team-up: setup-team  ## the team deployment on this machine: PostgreSQL, MLflow server, Dagster code server, webserver and daemon, insight app
	$(BIN)/python -m medmkt_assets.team up

team-down:  ## stop what `make team-up` started (data stays in data/team)
	$(BIN)/python -m medmkt_assets.team down

team-run:  ## queue a full run on the team deployment (JOB=full_refresh) and wait for it
	$(BIN)/python -m medmkt_assets.team run --job $${JOB:-full_refresh}

spark-cluster: setup  ## start a standalone Spark cluster on 127.0.0.1 (a master, WORKERS=2 workers of one core); prints its master URL and web UI
	$(BIN)/python -m medmkt_assets.spark_cluster start --workers $${WORKERS:-2}

spark-cluster-stop:  ## stop the cluster `make spark-cluster` started
	$(BIN)/python -m medmkt_assets.spark_cluster stop

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: setup $(DAGSTER_HOME)/dagster.yaml  ## materialize the whole pipeline (demo data generated when none is given)
	$(BIN)/python -m medmkt_assets.cli run

test: setup  ## run the test suite (Spark tests skip, saying why, without PySpark and Java: `make setup-spark`)
	$(BIN)/python -m pytest

dev: setup $(DAGSTER_HOME)/dagster.yaml  ## Dagster UI + daemon on :DAGSTER_PORT (3000), MLflow UI on :MLFLOW_PORT (5000) or MEDMKT_MLFLOW_UI, Data Docs on MEDMKT_QUALITY_DOCS_URL (:8765), insight app on :MEDMKT_APP_PORT (8501)
	$(BIN)/python -m medmkt_assets.cli dev

app: setup  ## the insight app alone on :8501 (reads the snapshot the last run published)
	$(BIN)/python -m medmkt_assets.app

catalogs: setup  ## compile the insight app's gettext catalogs (medmkt_assets/app/locale/*/LC_MESSAGES/medmkt.po -> .mo; commit both)
	$(BIN)/python -m medmkt_assets.app.catalogs

demo-data: setup  ## write demo source files into data/raw (PATIENTS=20000 SEED=42)
	$(BIN)/python -m medmkt_assets.demo_data --patients $${PATIENTS:-20000} --seed $${SEED:-42} --out data/raw

contract-check: setup  ## the contract's shapes and privacy rules on MEDMKT_WAREHOUSE (data/warehouse.duckdb), with the project's Python (it needs duckdb)
	$(BIN)/python ../shared/tools/check_contract.py $${MEDMKT_WAREHOUSE:-data/warehouse.duckdb}

bench: setup  ## benchmark the pipeline (SIZES=10000,100000,1000000; NAIVE_SIZE=100000, 0 to skip; ENGINE=duckdb or spark; DATA=folder to keep and reuse demo data in); tables in data/bench/
	$(BIN)/python -m medmkt_assets.bench --sizes $${SIZES:-10000,100000,1000000} --naive-size $${NAIVE_SIZE:-100000} --engine $${ENGINE:-duckdb} $${DATA:+--data $$DATA}

clean:  ## remove generated data (warehouse, Spark lakehouse and metastore, MLflow store, demo files, Dagster home, the team deployment's data/team after stopping it)
	-@test ! -d data/team || $(BIN)/python -m medmkt_assets.team down
	rm -rf data/raw data/warehouse.duckdb* data/mlflow data/team data/exports data/quality data/alerts data/insight data/lakehouse data/metastore .dagster_home
