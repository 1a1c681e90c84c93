"""`make run` / `make dev` entry points: materialize everything, summarize, serve the UIs."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from medmkt_assets.lib.ops.quality import data_docs_root
from medmkt_assets.lib.sources.as_of import AS_OF_TABLE
from medmkt_assets.lib.sources.quarantine_share import quarantine_verdict
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets.lib.tracking.mlflow_runs import artifact_root, prepare_backend
from medmkt_assets.settings import Settings, dagster_ui_url, env

BIN = Path(sys.executable).parent


def summary(settings: Settings) -> str:
    """Tables written, with row counts, and where everything lives."""
    lines = [f"Warehouse: {settings.warehouse.resolve()}"]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    tables = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('marts', 'staging', 'quarantine') ORDER BY 1, 2").fetchall()
    for schema, table in tables:
        (n,) = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()[0]
        if schema != "quarantine" or n:
            lines.append(f"  {schema}.{table:<28} {n:>12,} rows")
    con.close()
    lines += [
        f"MLflow store: {settings.mlflow_tracking_uri}",
        f"Audience exports: {settings.export_dir.resolve()}",
        f"Next: `make dev` (Dagster UI {dagster_ui_url()}, MLflow UI {settings.mlflow_ui}, Data Docs "
        f"{settings.quality_docs_url}, insight app http://127.0.0.1:{settings.app_port}), "
        f"`make contract-check`, `make test`.",
    ]
    return "\n".join(lines)


def lost_tables(settings: Settings) -> list[str]:
    """The quarantine-share verdicts a failed run ended on, repeated below the run log: the
    message naming the table, the share, the reasons and what to try is easy to miss in it."""
    if not settings.warehouse.exists():
        return []
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables"
                                            ).fetchall()}
        if AS_OF_TABLE not in tables:
            return []
        as_of, basis = con.execute(f"SELECT as_of, basis FROM {AS_OF_TABLE} LIMIT 1").fetchall()[0]
        messages = []
        for table in (t for t, spec in SOURCE_TABLES.items() if spec.required):
            if {f"raw.{table}", f"quarantine.{table}"} <= tables:
                (raw,) = con.execute(f"SELECT count(*) FROM raw.{table}").fetchall()[0]
                reasons = dict(con.execute(f"SELECT _reason, count(*) FROM quarantine.{table} GROUP BY 1").fetchall())
                verdict = quarantine_verdict(table, raw, reasons, settings.max_quarantine_share, str(as_of), basis)
                messages += [] if verdict.passed else [verdict.message]
        return messages
    finally:
        con.close()


# `dagster job execute` and `dagster dev` say they are superseded by `dg launch --job` and `dg dev`,
# which need the dagster-dg-cli package and a dg project layout medmkt does not have; both commands
# are supported in Dagster 1.13 and do what `make run` / `make dev` need, so those two notices are
# silenced (by their exact text, nothing else).
SUPERSEDED_NOTICES = ("ignore:Function `job_execute_command` is superseded",
                      "ignore:Function `dev_command` is superseded")
# MLflow 3.17's own server imports starlette.middleware.wsgi, which Starlette deprecates: a notice
# per UI worker that nothing in medmkt can act on.
MLFLOW_UI_NOTICES = ("ignore:starlette.middleware.wsgi is deprecated",)


def quiet_cli_env(notices: tuple[str, ...] = SUPERSEDED_NOTICES) -> dict[str, str]:
    """This environment with the given warnings (PYTHONWARNINGS entries) silenced in the child."""
    current = os.environ.get("PYTHONWARNINGS", "")
    return {**os.environ, "PYTHONWARNINGS": ",".join(w for w in (current, *notices) if w)}


def run(settings: Settings) -> int:
    if settings.engine == "spark":
        from medmkt_assets.lib.engine.spark.session import spark_missing

        missing = spark_missing(settings.spark_remote)
        if missing:
            print(f"MEDMKT_ENGINE=spark: {missing}", file=sys.stderr)
            return 2
    prepare_backend(settings.mlflow_tracking_uri)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    engine = (f"Spark {settings.spark_remote or settings.spark_master}, tables in {settings.lakehouse}"
              if settings.engine == "spark" else "DuckDB")
    print(f"Materializing every asset from {settings.source_dir} ({settings.source_format}) on {engine} ...",
          flush=True)
    # the named job, not an ad-hoc selection: the run carries medmkt/trigger = manual like a UI launch
    done = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "medmkt_assets.definitions",
                           "-j", "full_refresh"], env=quiet_cli_env())
    if done.returncode != 0:
        print("The run failed: see the step failure above (it names the file, column and row).", file=sys.stderr)
        for message in lost_tables(settings):
            print(message, file=sys.stderr)
        return done.returncode
    print(summary(settings))
    return 0


def mlflow_ui_env() -> dict[str, str]:
    """The MLflow UI's environment: no usage telemetry leaves the machine (MLFLOW_DISABLE_TELEMETRY).
    MLflow 3.17 has no server setting for its assistant panel (it opens once per browser on a local
    server and stays closed once closed) or for the home page's telemetry notice (dismissed once)."""
    return {**quiet_cli_env(MLFLOW_UI_NOTICES),
            "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true")}


def experiment_links(settings: Settings) -> list[str]:
    """The runs table of each medmkt experiment in the store, opened as model training."""
    from mlflow.tracking import MlflowClient

    from medmkt_assets.lib.tracking.mlflow_runs import EXPERIMENT_DESCRIPTIONS, experiment_url

    client = MlflowClient(settings.mlflow_tracking_uri)
    found = [client.get_experiment_by_name(name) for name in EXPERIMENT_DESCRIPTIONS]
    return [f"  {e.name}: {experiment_url(settings.mlflow_ui, e.experiment_id)}" for e in found if e is not None]


def dev_commands(settings: Settings) -> dict[str, list[str]]:
    """What `make dev` starts, each on the address the settings give (the ones links are written with)."""
    mlflow_ui, docs = urlparse(settings.mlflow_ui), urlparse(settings.quality_docs_url)
    host = env("MEDMKT_BIND_HOST")  # loopback unless told otherwise
    mlflow_cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", settings.mlflow_tracking_uri,
                  "--host", host, "--port", str(mlflow_ui.port or 80)]
    root = artifact_root(settings.mlflow_tracking_uri)
    if root:
        mlflow_cmd += ["--default-artifact-root", root]
    return {
        "mlflow": mlflow_cmd,
        "docs": [sys.executable, "-m", "http.server", str(docs.port or 80), "--bind", docs.hostname or "127.0.0.1",
                 "--directory", str(data_docs_root(settings.quality_dir))],
        "app": [sys.executable, "-m", "medmkt_assets.app"],
        "dagster": [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", host,
                    "-p", str(settings.dagster_port)],
    }


# `dagster dev` logs that the dagster.yaml in the folder it starts in "will not be used": it is the
# instance file make copies into DAGSTER_HOME, so it is used, and the line would only mislead.
UNUSED_INSTANCE_FILE_NOTICE = "file will not be used to configure Dagster"


def copy_lines_but(source, target, notice: str) -> None:
    """Copy `source` to `target` line by line, leaving out lines that hold `notice`."""
    for line in source:
        if notice not in line:
            target.write(line)
            target.flush()


def dev(settings: Settings) -> int:
    """Dagster UI and daemon, with the MLflow UI, the Data Docs site and the insight app beside it."""
    prepare_backend(settings.mlflow_tracking_uri)
    data_docs_root(settings.quality_dir).mkdir(parents=True, exist_ok=True)
    commands = dev_commands(settings)
    helpers = [subprocess.Popen(commands["mlflow"], env=mlflow_ui_env()),
               subprocess.Popen(commands["docs"]), subprocess.Popen(commands["app"])]
    print(f"Dagster {dagster_ui_url()} · MLflow {settings.mlflow_ui} · "
          f"Data Docs {settings.quality_docs_url} · insight app http://127.0.0.1:{settings.app_port}", flush=True)
    print("\n".join(["MLflow runs (opened as model training):", *experiment_links(settings)]), flush=True)
    try:
        dagster = subprocess.Popen(commands["dagster"], env=quiet_cli_env(), stderr=subprocess.PIPE, text=True)
        threading.Thread(target=copy_lines_but, args=(dagster.stderr, sys.stderr, UNUSED_INSTANCE_FILE_NOTICE),
                         daemon=True).start()
        return dagster.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for process in helpers:
            process.terminate()
        for process in helpers:
            process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medmkt", description=__doc__)
    parser.add_argument("command", choices=("run", "dev", "summary"))
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "run":
        return run(settings)
    if args.command == "dev":
        return dev(settings)
    print(summary(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
