"""`make run` / `make dev` entry points: materialize everything, summarize, serve the UIs."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from medmkt_assets.lib.ops.quality import data_docs_root
from medmkt_assets.lib.sources.as_of import AS_OF_TABLE
from medmkt_assets.lib.sources.quarantine_share import quarantine_verdict
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets.lib.tracking.mlflow_runs import artifact_root, prepare_backend
from medmkt_assets.settings import Settings, env

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
        f"Next: `make dev` (Dagster UI http://127.0.0.1:3000, MLflow UI {settings.mlflow_ui}, Data Docs "
        f"{settings.quality_docs_url}, insight app http://127.0.0.1:{settings.app_port}), "
        f"`python ../shared/tools/check_contract.py {settings.warehouse}`, `make test`.",
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
                           "-j", "full_refresh"])
    if done.returncode != 0:
        print("The run failed: see the step failure above (it names the file, column and row).", file=sys.stderr)
        for message in lost_tables(settings):
            print(message, file=sys.stderr)
        return done.returncode
    print(summary(settings))
    return 0


def dev(settings: Settings) -> int:
    """Dagster UI and daemon, with the MLflow UI, the Data Docs site and the insight app beside it."""
    prepare_backend(settings.mlflow_tracking_uri)
    host = env("MEDMKT_BIND_HOST")  # loopback unless told otherwise
    mlflow_cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", settings.mlflow_tracking_uri,
                  "--host", host, "--port", env("MLFLOW_PORT")]
    root = artifact_root(settings.mlflow_tracking_uri)
    if root:
        mlflow_cmd += ["--default-artifact-root", root]
    docs = data_docs_root(settings.quality_dir)
    docs.mkdir(parents=True, exist_ok=True)
    address = urlparse(settings.quality_docs_url)
    docs_cmd = [sys.executable, "-m", "http.server", str(address.port or 80), "--bind", address.hostname or "127.0.0.1",
                "--directory", str(docs)]
    app_cmd = [sys.executable, "-m", "medmkt_assets.app"]
    dagster_cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", host, "-p", env("DAGSTER_PORT")]
    helpers = [subprocess.Popen(cmd) for cmd in (mlflow_cmd, docs_cmd, app_cmd)]
    print(f"Dagster http://{host}:{env('DAGSTER_PORT')} · MLflow {settings.mlflow_ui} · "
          f"Data Docs {settings.quality_docs_url} · insight app http://127.0.0.1:{settings.app_port}", flush=True)
    try:
        return subprocess.call(dagster_cmd)
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
