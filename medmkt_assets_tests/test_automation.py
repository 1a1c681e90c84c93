"""Jobs, schedules and the incoming-files sensor (build_sensor_context with a cursor)."""
import json

import dagster as dg
import duckdb

from medmkt_assets.definitions import build_definitions
from medmkt_assets.defs.automation.sensors import alert_on_failure, incoming_files
from medmkt_assets.defs.resources import AlertFolder, SourceFiles
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import (
    make_resources,
    materialize_all,
    write_tiny_source,
)

BATCH = ("order_id,line_no,patient_id,product_id,ordered_at,quantity,unit_price,channel,facility_id\n"
         "B1,1,P1,C,2024-05-01T09:00:00,1,100,online,F1\nB1,2,P1,B,2024-05-01T09:00:00,1,50,online,F1\n")


def _tick(tmp_path, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={
        "sources": SourceFiles(source_dir=str(tmp_path / "source"), incoming_dir=str(tmp_path / "incoming")),
        "alerts": AlertFolder(path=str(tmp_path / "alerts"))})
    result = incoming_files(context)
    requests = [r for r in (result if isinstance(result, list) else []) if isinstance(r, dg.RunRequest)]
    return requests, context.cursor


def _drop(tmp_path, name: str, body: str = BATCH, table: str = "orders"):
    folder = tmp_path / "incoming" / table
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body)
    return folder / name


def test_a_new_batch_runs_once_when_it_has_stopped_growing(tmp_path):
    _drop(tmp_path, "day1.csv")
    requests, cursor = _tick(tmp_path)
    assert requests == []  # first look: remember the size
    requests, cursor = _tick(tmp_path, cursor)
    assert len(requests) == 1 and requests[0].run_key.startswith("orders:")
    assert dg.AssetKey(["staging", "orders"]) in requests[0].asset_selection
    accepted = list((tmp_path / "incoming" / "_accepted" / "orders").iterdir())
    assert len(accepted) == 1 and accepted[0].name.endswith("_day1.csv")
    assert _tick(tmp_path, cursor)[0] == []  # nothing left to replay


def test_a_renamed_copy_is_not_ingested_twice_but_a_changed_file_is(tmp_path):
    _drop(tmp_path, "day1.csv")
    cursor = _tick(tmp_path)[1]
    first, cursor = _tick(tmp_path, cursor)
    _drop(tmp_path, "day1 (copy).csv")
    _drop(tmp_path, "day2.csv", BATCH.replace("B1", "B2"))
    cursor = _tick(tmp_path, cursor)[1]
    requests, _ = _tick(tmp_path, cursor)
    assert [r.tags["medmkt/batch_file"].split("_", 2)[2] for r in requests] == ["day2.csv"]
    assert requests[0].run_key != first[0].run_key
    assert (tmp_path / "incoming" / "_duplicates" / "orders" / "day1 (copy).csv").exists()


def test_runs_say_what_started_them(tmp_path):
    _drop(tmp_path, "day1.csv")
    (request,) = _tick(tmp_path, _tick(tmp_path)[1])[0]
    assert request.tags["medmkt/trigger"] == "sensor:incoming_files"
    assert request.tags["medmkt/batch_file"].endswith("_day1.csv")  # what the sensor saw: the file, no row of it
    defs = build_definitions(Settings.from_env())
    for schedule in defs.schedules:  # Dagster adds dagster/schedule_name; the request carries the trigger
        (scheduled,) = schedule.evaluate_tick(dg.build_schedule_context()).run_requests
        assert scheduled.tags["medmkt/trigger"] == f"schedule:{schedule.name}"
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["refresh_downstream"].run_tags["medmkt/trigger"] == "sensor:refresh_downstream"
    # a launch by hand (UI launchpad, `dagster job launch`) gets the job's default; requests override it
    for job in defs.jobs:
        resolved = defs.resolve_job_def(job.name)
        assert resolved.tags["medmkt/trigger"] == resolved.run_tags["medmkt/trigger"] == "manual"


def test_half_written_files_wait(tmp_path):
    _drop(tmp_path, "big.csv.tmp")
    _drop(tmp_path, ".hidden.csv")
    growing = _drop(tmp_path, "growing.csv", BATCH[:80])
    cursor = _tick(tmp_path)[1]
    growing.write_text(BATCH)  # still being written
    requests, cursor = _tick(tmp_path, cursor)
    assert requests == [] and "growing.csv" in cursor
    requests, _ = _tick(tmp_path, cursor)
    assert len(requests) == 1  # stable now; the .tmp and dot-file were never taken
    assert (tmp_path / "incoming" / "orders" / "big.csv.tmp").exists()


def test_a_bad_batch_is_rejected_with_a_reason_and_an_alert_without_blocking_the_next(tmp_path):
    _drop(tmp_path, "broken.csv", "order_id,quantity\nX,1\n")
    _drop(tmp_path, "good.csv")
    cursor = _tick(tmp_path)[1]
    requests, _ = _tick(tmp_path, cursor)
    assert len(requests) == 1
    reason = (tmp_path / "incoming" / "_rejected" / "orders" / "broken.csv.reason.txt").read_text()
    assert "broken.csv" in reason and "patient_id" in reason
    alert = json.loads(next((tmp_path / "alerts").glob("*batch_rejected*.json")).read_text())
    assert alert["reason"] == reason.strip()


def _staged_tiny_source(tmp_path) -> tuple[dg.Definitions, dict]:
    """The tiny source ingested and staged, with the drop zone under tmp_path/incoming."""
    write_tiny_source(tmp_path / "source")
    resources = make_resources(tmp_path / "source", tmp_path / "w.duckdb", f"sqlite:///{tmp_path / 'm.db'}")
    # the tiny source is nearly half bad rows by design; a batch of more bad ones would tip the
    # quarantine-share gate, which is not what these tests are about
    resources["sources"] = SourceFiles(source_dir=str(tmp_path / "source"), incoming_dir=str(tmp_path / "incoming"),
                                       max_quarantine_share=0.75)
    defs = build_definitions(Settings.from_env())
    assert materialize_all(defs, resources, dg.AssetSelection.groups("ingest", "staging"), checks=False).success
    return defs, resources


def test_an_accepted_batch_lands_in_raw_and_staging_with_its_lineage(tmp_path, pseudonym_env):
    write_tiny_source(tmp_path / "source")
    _drop(tmp_path, "day1.csv")
    cursor = _tick(tmp_path)[1]
    (request,) = _tick(tmp_path, cursor)[0]
    resources = make_resources(tmp_path / "source", tmp_path / "w.duckdb", f"sqlite:///{tmp_path / 'm.db'}")
    resources["sources"] = SourceFiles(source_dir=str(tmp_path / "source"), incoming_dir=str(tmp_path / "incoming"))
    result = materialize_all(build_definitions(Settings.from_env()), resources,
                             dg.AssetSelection.groups("ingest", "staging"), checks=False)
    assert result.success
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    files = dict(con.execute("SELECT order_id, any_value(_source_file) FROM staging.orders GROUP BY 1").fetchall())
    assert files["B1"].endswith("_day1.csv") and request.tags["medmkt/batch_file"] in files["B1"]


def test_jobs_schedules_and_sensors_are_named_and_defaulted_as_documented():
    defs = build_definitions(Settings.from_env())
    assert {j.name for j in defs.jobs} >= {"full_refresh", "ingestion", "model_retraining", "campaign_report",
                                           "ingest_incoming_batch"}
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["nightly_ingestion"].cron_schedule == "0 2 * * *"
    assert schedules["nightly_ingestion"].default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedules["daily_campaign_report"].default_status == dg.DefaultScheduleStatus.STOPPED
    assert {s.name for s in defs.sensors} == {"incoming_files", "refresh_downstream", "alert_on_failure"}


def test_a_failed_run_leaves_an_alert_file(tmp_path):
    instance = dg.DagsterInstance.ephemeral()

    @dg.op
    def explode():
        raise RuntimeError("boom")

    @dg.job
    def fragile():
        explode()

    result = fragile.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_failure", dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(), resources={"alerts": AlertFolder(path=str(tmp_path))},
    ).for_run_failure()
    alert_on_failure(context)
    alert = json.loads(next(tmp_path.glob("*run_failed*.json")).read_text())
    assert alert["job"] == "fragile" and alert["run_id"] == result.run_id


def _hold_and_write(path: str, label: str, hold: float) -> None:
    import time

    from dagster_duckdb import DuckDBResource

    from medmkt_assets.defs.resources import Warehouse

    with Warehouse(engine=DuckDBResource(database=path)).session() as con:
        con.execute("CREATE TABLE IF NOT EXISTS writes (label VARCHAR)")
        con.execute("INSERT INTO writes VALUES (?)", [label])
        time.sleep(hold)


def test_two_writers_at_once_both_succeed(tmp_path):
    """DuckDB allows one writing process: the second waits (the Warehouse resource's engine backs off)."""
    import multiprocessing

    path = str(tmp_path / "w.duckdb")
    ctx = multiprocessing.get_context("spawn")
    first = ctx.Process(target=_hold_and_write, args=(path, "first", 2.0))
    first.start()
    import time
    time.sleep(0.5)
    second = ctx.Process(target=_hold_and_write, args=(path, "second", 0.0))
    second.start()
    first.join(60)
    second.join(60)
    assert first.exitcode == 0 and second.exitcode == 0
    assert sorted(r[0] for r in duckdb.connect(path).execute("SELECT label FROM writes").fetchall()) == [
        "first", "second"]


def test_a_sensor_run_appends_its_batch_without_reloading_the_sources(tmp_path, pseudonym_env):
    defs, resources = _staged_tiny_source(tmp_path)
    before = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True).execute(
        "SELECT count(*) FROM raw.orders").fetchall()[0][0]

    _drop(tmp_path, "day1.csv")
    cursor = _tick(tmp_path)[1]
    (request,) = _tick(tmp_path, cursor)[0]
    orders = tmp_path / "source" / "orders.csv"  # changed after the last full load: an append must not read it
    orders.write_text(orders.read_text() + "O99,1,P1,A,2024-06-01,1,10,store,F1\n")
    result = dg.materialize(list(defs.assets) + list(defs.asset_checks), resources=resources,
                            selection=request.asset_selection, tags=request.tags, raise_on_error=False)
    assert result.success
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM raw.orders").fetchall()[0][0] == before + 2
    assert con.execute("SELECT count(*) FROM raw.orders WHERE order_id = 'O99'").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM staging.orders WHERE order_id = 'B1'").fetchall()[0][0] == 2
    con.close()
    # the same request again (a retried run) finds the batch loaded and falls back to a full reload
    assert dg.materialize(list(defs.assets) + list(defs.asset_checks), resources=resources,
                          selection=request.asset_selection, tags=request.tags, raise_on_error=False).success
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM raw.orders WHERE order_id IN ('B1', 'O99')").fetchall()[0][0] == 3


MIXED_BATCH = ("order_id,line_no,patient_id,product_id,ordered_at,quantity,unit_price,channel,facility_id\n"
               "O1,1,P2,C,2024-05-02,1,100,app,F2\n"   # key already staged from the main file
               "B2,1,P2,C,2024-05-02,1,100,app,F2\n"
               "B2,1,P2,A,2024-05-02,1,10,app,F2\n"    # repeated within the batch
               "B3,1,P4,C,2024-05-03,0,100,app,F2\n"   # bad quantity
               "B4,1,P9,C,2024-05-03,1,100,app,F2\n")  # unknown patient


def _tables(path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    tables = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
              for t in ("staging.orders", "quarantine.orders")}
    con.close()
    return tables


def test_a_sensor_run_stages_only_its_batch_and_matches_a_full_restage(tmp_path, pseudonym_env):
    defs, resources = _staged_tiny_source(tmp_path)
    everything = list(defs.assets) + list(defs.asset_checks)
    _drop(tmp_path, "day2.csv", MIXED_BATCH)
    cursor = _tick(tmp_path)[1]
    (request,) = _tick(tmp_path, cursor)[0]

    result = dg.materialize(everything, resources=resources, selection=request.asset_selection,
                            tags=request.tags, raise_on_error=False)
    assert result.success  # row accounting and the quality gates hold after the append
    staged = next(m for m in result.asset_materializations_for_node("staging__orders"))
    assert staged.metadata["staged_this_run"].value == "only the new batch (5 rows)"
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    verdicts = dict(con.execute("SELECT order_id || '/' || product_id, _reason FROM quarantine.orders "
                                "WHERE _source_file LIKE '%day2.csv'").fetchall())
    assert verdicts == {
        "O1/C": "duplicate order_id, line_no; the first row in file order was kept",
        "B2/A": "duplicate order_id, line_no; the first row in file order was kept",
        "B3/C": "quantity is zero or negative (cancellation or return)",
        "B4/C": "unknown patient_id (not in patients)",
    }
    assert con.execute("SELECT product_id FROM staging.orders WHERE order_id = 'O1' AND line_no = 1"
                       ).fetchall() == [("A",)]  # the main file's row, loaded first, is kept
    con.close()
    appended = _tables(tmp_path / "w.duckdb")

    # the same tables from a full restage (a run without the sensor's tags)
    assert dg.materialize(everything, resources=resources, selection=[dg.AssetKey(["staging", "orders"])],
                          raise_on_error=False).success
    assert _tables(tmp_path / "w.duckdb") == appended


def test_a_patients_batch_appends_to_staging_and_restricted(tmp_path, pseudonym_env):
    defs, resources = _staged_tiny_source(tmp_path)
    _drop(tmp_path, "new.csv", "patient_id,gender,birth_date,registered_at\nP7,F,1980-01-01,2024-05-01\n"
                               "P2,M,1990-06-01,2024-05-01\n", table="patients")
    cursor = _tick(tmp_path)[1]
    (request,) = _tick(tmp_path, cursor)[0]
    result = dg.materialize(list(defs.assets) + list(defs.asset_checks), resources=resources,
                            selection=request.asset_selection, tags=request.tags, raise_on_error=False)
    assert result.success
    staged = next(m for m in result.asset_materializations_for_node("staging__patients"))
    assert staged.metadata["staged_this_run"].value == "only the new batch (2 rows)"
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM restricted.patients WHERE patient_id = 'P7'").fetchall() == [(1,)]
    assert con.execute("SELECT _reason FROM quarantine.patients WHERE _source_file LIKE '%new.csv'").fetchall() == [
        ("duplicate patient_id; the first row in file order was kept",)]
    assert con.execute("SELECT count(*) FROM staging.patients").fetchall() == [(5,)]


def _fhir_tick(tmp_path, source, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={
        "sources": SourceFiles(source_dir=str(source), source_format="fhir",
                               incoming_dir=str(tmp_path / "incoming")),
        "alerts": AlertFolder(path=str(tmp_path / "alerts"))})
    result = incoming_files(context)
    return [r for r in (result if isinstance(result, list) else []) if isinstance(r, dg.RunRequest)], context.cursor


def test_a_fhir_source_takes_batches_in_its_own_format(tmp_path, pseudonym_env):
    """An incremental Bulk Data export dropped as NDJSON joins the FHIR source; a broken one is refused by line."""
    from medmkt_assets.demo_data.formats import generate_in_layout

    source = tmp_path / "fhir"
    generate_in_layout(source, "fhir-bulk", patients=150, seed=3)
    export = tmp_path / "incoming" / "export"
    export.mkdir(parents=True)
    (export / "Patient.since-2026-12-01.ndjson").write_text(
        '{"resourceType": "Patient", "id": "NEW-1", "gender": "female", "birthDate": "1980-02-03"}\n')
    (export / "Encounter.broken.ndjson").write_text('{"resourceType": "Encounter", "id": "e1"}\n{not json\n')
    cursor = _fhir_tick(tmp_path, source)[1]
    requests, _ = _fhir_tick(tmp_path, source, cursor)
    assert [r.tags["medmkt/batch_table"] for r in requests] == ["export"]
    assert dg.AssetKey(["staging", "orders"]) in requests[0].asset_selection
    reason = (tmp_path / "incoming" / "_rejected" / "export" / "Encounter.broken.ndjson.reason.txt").read_text()
    assert "Encounter.broken.ndjson: line 2 is not valid JSON" in reason

    resources = make_resources(source, tmp_path / "warehouse.duckdb", f"sqlite:///{tmp_path / 'mlflow.db'}")
    resources["sources"] = SourceFiles(source_dir=str(source), source_format="fhir",
                                       incoming_dir=str(tmp_path / "incoming"))
    result = materialize_all(build_definitions(Settings.from_env()), resources,
                             dg.AssetSelection.groups("ingest", "staging"), checks=False)
    assert result.success
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    landed = con.execute("SELECT _source_file FROM raw.patients WHERE patient_id = 'NEW-1'").fetchall()
    assert len(landed) == 1 and landed[0][0].endswith("_Patient.since-2026-12-01.ndjson")
    assert con.execute("SELECT count(*) FROM staging.patients").fetchone()[0] == 151
    files = con.execute("SELECT file FROM ops.source_files").fetchall()
    assert any(f[0].endswith("_Patient.since-2026-12-01.ndjson") for f in files)
