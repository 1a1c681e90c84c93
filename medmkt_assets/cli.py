"""`make run` / `make dev` entry points: materialize everything, summarize, serve the UIs."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from medmkt_assets.lib.tracking import artifact_root, prepare_backend
from medmkt_assets.settings import Settings

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
        "Next: `make dev` (Dagster UI http://127.0.0.1:3000, MLflow UI http://127.0.0.1:5000), "
        f"`python ../shared/tools/check_contract.py {settings.warehouse}`, `make test`.",
    ]
    return "\n".join(lines)


def run(settings: Settings) -> int:
    prepare_backend(settings.mlflow_tracking_uri)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    print(f"Materializing every asset from {settings.source_dir} ({settings.source_format}) ...", flush=True)
    done = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "medmkt_assets.definitions",
                           "--select", "*"])
    if done.returncode != 0:
        print("The run failed: see the step failure above (it names the file, column and row).", file=sys.stderr)
        return done.returncode
    print(summary(settings))
    return 0


def dev(settings: Settings) -> int:
    prepare_backend(settings.mlflow_tracking_uri)
    mlflow_cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", settings.mlflow_tracking_uri,
                  "--host", "127.0.0.1", "--port", os.environ.get("MLFLOW_PORT", "5000")]
    root = artifact_root(settings.mlflow_tracking_uri)
    if root:
        mlflow_cmd += ["--default-artifact-root", root]
    dagster_cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                   "-p", os.environ.get("DAGSTER_PORT", "3000")]
    mlflow_ui = subprocess.Popen(mlflow_cmd)
    try:
        return subprocess.call(dagster_cmd)
    except KeyboardInterrupt:
        return 0
    finally:
        mlflow_ui.terminate()
        mlflow_ui.wait(timeout=30)


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
