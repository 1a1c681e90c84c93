"""The team deployment against the real services: PostgreSQL (Debian's package, a cluster of its own in
a temporary folder), the MLflow tracking server, a Dagster code server, webserver and daemon, each a
process of its own on free loopback ports, started by the same code as `make team-up` (team.py).

Runs are launched as a person launches them: through the webserver's GraphQL API, queued, picked up by
the daemon. One stack serves the module's tests, in order, on a 300-patient demo world.
Skipped (saying why) without PostgreSQL or the `team` extra, except under MEDMKT_REQUIRE_TEAM=1 (CI).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager

import duckdb
import pytest

from medmkt_assets_tests.conftest import TEST_KEY, demo_batch, require, row_accounting
from medmkt_assets_tests.servers import free_port

pytestmark = pytest.mark.team
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def require_team() -> None:
    """Skip (saying why) without PostgreSQL or the `team` extra, except where MEDMKT_REQUIRE_TEAM=1 (CI)."""
    from medmkt_assets.team import team_missing

    require(team_missing(), "MEDMKT_REQUIRE_TEAM")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The team stack (no insight app: its access has tests of its own below) on a tiny demo world."""
    require_team()
    from medmkt_assets import postgres
    from medmkt_assets.demo_data import generate
    from medmkt_assets.team import Team, down, up

    root = tmp_path_factory.mktemp("team")
    generate(root / "source", patients=300, seed=7)
    pipeline = {"MEDMKT_SOURCE_DIR": str(root / "source"), "MEDMKT_WAREHOUSE": str(root / "warehouse.duckdb"),
                "MEDMKT_INCOMING_DIR": str(root / "incoming"), "MEDMKT_EXPORT_DIR": str(root / "exports"),
                "MEDMKT_QUALITY_DIR": str(root / "quality"), "MEDMKT_ALERT_DIR": str(root / "alerts"),
                "MEDMKT_INSIGHT_SNAPSHOT": str(root / "insight" / "insight.duckdb"),
                "MEDMKT_PSEUDONYM_KEY": TEST_KEY, "MEDMKT_MLFLOW_UI": ""}
    team = Team(folder=root / "team", pg_port=free_port(), dagster_port=free_port(), mlflow_port=free_port(),
                app_port=free_port(), code_server=f"127.0.0.1:{free_port()}", pipeline_env=pipeline)
    services = None
    try:
        services = up(team, app=False)
        yield {"team": team, "services": services, "root": root}
    finally:
        down(team, services)
        data = postgres.data_folder(team.folder / "pg")
        if data != team.folder / "pg":  # a stand-in under /var/tmp (see postgres.data_folder)
            shutil.rmtree(data, ignore_errors=True)


def pg_rows(team, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows from Dagster's PostgreSQL database."""
    from medmkt_assets import postgres

    con = postgres.connect(team.pg_host, team.pg_port, team.pg_user, team.password(), team.dagster_db)
    try:
        with con.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall()
    finally:
        con.close()


ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


@contextmanager
def warehouse(stack, timeout: float = 600):
    """The warehouse, read-only, once no run is writing it: runs that declarative automation starts
    after ours (refresh_downstream) hold DuckDB's one-writer lock while they go."""
    team, deadline = stack["team"], time.time() + timeout
    while True:
        if not pg_rows(team, "SELECT count(*) FROM runs WHERE status IN %s", (ACTIVE,))[0][0]:
            try:
                con = duckdb.connect(str(stack["root"] / "warehouse.duckdb"), read_only=True)
                break
            except duckdb.IOException:
                pass
        if time.time() > deadline:
            raise TimeoutError("the warehouse stayed busy")
        time.sleep(2)
    try:
        yield con
    finally:
        con.close()


def client(team):
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=team.dagster_port)


def wait_runs(team, run_ids: list[str], timeout: float) -> dict[str, str]:
    """Poll the webserver until every run has ended; their statuses."""
    graphql, deadline, statuses = client(team), time.time() + timeout, {}
    while time.time() < deadline:
        statuses = {run_id: graphql.get_run_status(run_id).value for run_id in run_ids}
        if all(status in TERMINAL for status in statuses.values()):
            break
        time.sleep(2)
    return statuses


def test_a_full_run_is_queued_run_by_the_daemon_and_kept_in_postgres(stack):
    from medmkt_assets.team import submit

    team = stack["team"]
    run_id, status = submit(team, "full_refresh", timeout=900)
    assert status == "SUCCESS", stack["services"].log_tail("code-server")
    events = {e for (e,) in pg_rows(team, "SELECT DISTINCT dagster_event_type FROM event_logs WHERE run_id = %s",
                                    (run_id,))}
    # queued by the webserver, taken from the queue by the daemon, its steps' history in PostgreSQL
    assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_START", "PIPELINE_SUCCESS",
            "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"} <= events
    assert pg_rows(team, "SELECT status FROM runs WHERE run_id = %s", (run_id,)) == [("SUCCESS",)]
    assert "Launched 1 runs." in (team.logs / "daemon.log").read_text(errors="replace")  # the daemon dequeued it
    # the daemon's sensors and schedules keep their state and ticks there too
    assert pg_rows(team, "SELECT count(*) FROM job_ticks")[0][0] > 0
    with warehouse(stack) as con:
        assert con.execute("SELECT count(*) FROM marts.recommendations").fetchone()[0] > 0


def test_two_runs_at_once_take_turns_and_both_succeed(stack):
    """Two runs of the campaign report (both write the same marts) queued at once: the daemon launches
    the second only when the first has ended, and both succeed. (The campaign report is the smallest
    named job: two ingestion runs would set the whole downstream refresh going twice.)"""
    team = stack["team"]
    graphql = client(team)
    run_ids = [graphql.submit_job_execution("campaign_report", repository_location_name="medmkt") for _ in range(2)]
    statuses = wait_runs(team, run_ids, 900)
    assert list(statuses.values()) == ["SUCCESS", "SUCCESS"], stack["services"].log_tail("daemon")
    spans = sorted(pg_rows(team, "SELECT start_time, end_time FROM runs WHERE run_id IN %s", (tuple(run_ids),)))
    (first_start, first_end), (second_start, _) = spans
    assert second_start >= first_end, "the second run started before the first ended"
    waited = pg_rows(team, "SELECT count(*) FROM event_logs WHERE run_id IN %s AND dagster_event_type = "
                           "'PIPELINE_ENQUEUED'", (tuple(run_ids),))[0][0]
    assert waited == 2
    materialized = pg_rows(team, "SELECT count(*) FROM event_logs WHERE run_id IN %s AND dagster_event_type = "
                                 "'ASSET_MATERIALIZATION'", (tuple(run_ids),))[0][0]
    assert materialized == 4  # campaign_effects and campaign_effects_by_group, twice
    with warehouse(stack) as con:
        assert con.execute("SELECT count(*) FROM marts.campaign_effects").fetchone()[0] > 0


def _batch_runs(team, digest: str) -> list[tuple[str, str]]:
    return pg_rows(team, "SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
                         "WHERE t.key = 'medmkt/batch_sha256' AND t.value = %s ORDER BY r.create_timestamp",
                   (digest,))


def _sensor_ticks_since(team, last_tick: int) -> int:
    """incoming_files ticks recorded after the tick numbered `last_tick`."""
    return pg_rows(team, "SELECT count(*) FROM job_ticks WHERE id > %s AND tick_body LIKE %s",
                   (last_tick, '%"incoming_files"%'))[0][0]


def test_a_killed_daemon_loses_nothing_and_ingests_a_batch_once(stack):
    """The daemon is killed (SIGKILL, its whole process group) while the sensor's batch run is going, and
    started again: the run, whose worker belongs to the code server, ends; the restarted daemon reads
    the sensor's cursor and run keys from PostgreSQL and never requests the batch again."""
    import hashlib

    from medmkt_assets.team import service_commands

    team, services = stack["team"], stack["services"]
    body = demo_batch(stack["root"] / "source")
    digest = hashlib.sha256(body.encode()).hexdigest()
    folder = stack["root"] / "incoming" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "day1.csv").write_text(body, encoding="utf-8")
    deadline = time.time() + 600
    while time.time() < deadline and not any(s == "STARTED" for _, s in _batch_runs(team, digest)):
        time.sleep(0.5)
    runs = _batch_runs(team, digest)
    assert [s for _, s in runs] == ["STARTED"], f"no batch run going: {runs} {services.log_tail('daemon')}"
    os.killpg(services.groups.pop("daemon"), signal.SIGKILL)
    services.processes.pop("daemon").wait(30)
    time.sleep(5)
    restarted, last_tick = time.time(), pg_rows(team, "SELECT coalesce(max(id), 0) FROM job_ticks")[0][0]
    services.start("daemon", service_commands(team, team.dagster_home / "workspace.yaml")["daemon"])
    run_id = runs[0][0]
    assert wait_runs(team, [run_id], 600)[run_id] in TERMINAL
    while time.time() < restarted + 300 and _sensor_ticks_since(team, last_tick) < 2:
        time.sleep(2)  # the restarted daemon has looked at the drop zone twice
    assert _sensor_ticks_since(team, last_tick) >= 2, services.log_tail("daemon")
    runs = _batch_runs(team, digest)
    originals = [r for r in runs if not pg_rows(team, "SELECT 1 FROM run_tags WHERE run_id = %s AND key = "
                                                      "'dagster/parent_run_id'", (r[0],))]
    assert len(originals) == 1, runs
    final = wait_runs(team, [r[0] for r in runs], 600)
    assert "SUCCESS" in final.values(), final  # the run, or its automatic retry, finished the batch
    with warehouse(stack) as con:
        (batch_rows,) = con.execute("SELECT count(*) FROM raw.orders WHERE _source_file LIKE '%day1%'").fetchone()
        assert batch_rows == len(body.strip().splitlines()) - 1  # every line once, none twice
        raw, accounted = row_accounting(con, "orders")
        assert raw == accounted


def _rest(team, path: str, payload: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{team.mlflow_port}{path}"
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_the_mlflow_server_holds_runs_metrics_artifacts_and_champions(stack):
    import mlflow
    import pandas as pd

    team = stack["team"]
    experiments = {e["name"]: e for e in _rest(team, "/api/2.0/mlflow/experiments/search",
                                               {"max_results": 100})["experiments"]}
    assert {"medmkt-segmentation", "medmkt-recommenders"} <= set(experiments)
    assert all(e["artifact_location"].startswith("mlflow-artifacts:") for e in experiments.values())
    runs = _rest(team, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiments["medmkt-recommenders"][
        "experiment_id"]], "max_results": 100})["runs"]
    assert runs and all(r["data"].get("metrics") for r in runs)
    champion = next(r for r in runs if {"key": "champion", "value": "true"} in r["data"]["tags"])
    query = urllib.parse.urlencode({"run_id": champion["info"]["run_id"]})
    assert _rest(team, f"/api/2.0/mlflow/artifacts/list?{query}").get("files")
    for name in ("medmkt-recommender", "medmkt-segmentation"):
        alias = _rest(team, "/api/2.0/mlflow/registered-models/alias?" + urllib.parse.urlencode(
            {"name": name, "alias": "champion"}))
        assert alias["model_version"]["version"]
    # every MLflow link medmkt wrote into Dagster's metadata points at this server
    assert pg_rows(team, "SELECT count(*) FROM event_logs WHERE event LIKE %s",
                   (f"%{team.mlflow_url}/#/experiments/%",))[0][0] > 0
    # a champion loads from the server by alias (artifacts over HTTP) and answers what was published
    with warehouse(stack) as con:
        key = con.execute("SELECT patient_key FROM marts.recommendations ORDER BY patient_key LIMIT 1").fetchone()[0]
        published = con.execute("SELECT product_id FROM marts.recommendations WHERE patient_key = ? ORDER BY rank",
                                [key]).fetchall()
    mlflow.set_tracking_uri(team.mlflow_url)
    model = mlflow.pyfunc.load_model("models:/medmkt-recommender@champion")
    answer = model.predict(pd.DataFrame({"patient_key": [key]}), params={"k": len(published)})
    assert list(answer["product_id"]) == [p for (p,) in published]
    # the PostgreSQL password reached the services in their environment only: no log shows it
    for log in team.logs.glob("*.log"):
        assert team.password() not in log.read_text(errors="replace"), log.name


def test_the_app_refuses_to_listen_beyond_loopback_without_a_login(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMKT_APP_OIDC_")}
    env.update({"MEDMKT_APP_ADDRESS": "0.0.0.0", "MEDMKT_APP_PORT": str(free_port())})
    done = subprocess.run([sys.executable, "-m", "medmkt_assets.app"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "requires a login" in done.stderr and "MEDMKT_APP_OIDC_CLIENT_ID" in done.stderr


def test_the_app_beyond_loopback_gets_its_login_from_the_environment():
    from medmkt_assets.app.access import LOGIN_FLAG, OIDC, login_args

    assert login_args("127.0.0.1", {}) == ([], {})
    environ = {name: f"value-{n}" for n, name in enumerate(OIDC.values())}
    args, env = login_args("10.1.2.3", environ)
    assert args[0] == "--secrets.files" and env == {LOGIN_FLAG: "1"}
    secrets_file = args[1]
    try:
        assert os.stat(secrets_file).st_mode & 0o777 == 0o600
        assert not secrets_file.startswith(os.getcwd())  # never inside the repository
        text = open(secrets_file).read()
        assert text.startswith("[auth]\n") and 'client_id = "value-1"' in text
    finally:
        shutil.rmtree(os.path.dirname(secrets_file))


def test_a_server_address_argument_counts_as_where_the_app_listens(monkeypatch):
    from medmkt_assets.app.__main__ import address_of

    monkeypatch.setenv("MEDMKT_APP_ADDRESS", "127.0.0.1")
    assert address_of([]) == "127.0.0.1"
    assert address_of(["--server.address", "0.0.0.0"]) == "0.0.0.0"
    assert address_of(["--server.address=192.168.1.5"]) == "192.168.1.5"
    monkeypatch.setenv("MEDMKT_APP_ADDRESS", "::1")
    assert address_of([]) == "::1"
