"""The bad-input corpus: every broken source ends in a clear error or a quarantine row with a reason."""
from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from medmkt_assets.definitions import build_definitions
from medmkt_assets.lib.sources.files import SourceError, load_raw_table
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import (
    TINY_SOURCE,
    make_resources,
    materialize_all,
    write_tiny_source,
)

STAGE = dg.AssetSelection.groups("ingest", "staging")


def _load(path: Path, table: str = "patients"):
    con = duckdb.connect()
    load = load_raw_table(con, SOURCE_TABLES[table], [path], "raw_t")
    return load, con.execute("SELECT * FROM raw_t").fetchdf()


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(textwrap.dedent(text).encode(encoding))
    return path


def test_empty_file_names_the_file(tmp_path):
    with pytest.raises(SourceError, match=r"patients\.csv: the file is empty"):
        _load(_write(tmp_path / "patients.csv", ""))


def test_header_only_loads_no_rows(tmp_path):
    load, frame = _load(_write(tmp_path / "patients.csv", "patient_id,full_name\n"))
    assert load.rows == 0 and frame.empty


def test_missing_required_column_names_file_and_column(tmp_path):
    with pytest.raises(SourceError, match=r"orders\.csv: required column 'patient_id' is missing"):
        _load(_write(tmp_path / "orders.csv", "order_id,product_id,ordered_at\nO1,A,2024-01-01\n"), "orders")


def test_a_file_without_header_row_is_refused_without_quoting_its_first_row(tmp_path):
    path = _write(tmp_path / "patients.csv", "P000123,Zhang San,13800138000\nP000124,Li Si,13900139000\n")
    with pytest.raises(SourceError, match=r"patients\.csv: required column 'patient_id' is missing") as error:
        _load(path)
    assert "header row" in str(error.value)
    assert not any(value in str(error.value).lower() for value in ("p000123", "zhang", "13800138000"))


def test_engine_errors_name_the_problem_but_mask_cell_values():
    from medmkt_assets.lib.sources.files import masked_error

    masked = masked_error(duckdb.ConversionException("Could not convert string 'P000123' to INT32\nLINE 1: ..."))
    assert masked == "Could not convert string '…' to INT32"


def test_raw_previews_show_no_identifier_free_text_or_unknown_column():
    from medmkt_assets.defs.warehouse import preview
    from medmkt_assets.lib.engine.warehouse import Session

    con = Session(duckdb.connect())
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.surveys AS SELECT 'P1' AS patient_id, '5' AS satisfaction, "
                "'call Zhang San at 13800138000' AS comment, 'X123' AS national_id, 'a.csv' AS _source_file")
    shown = preview(con, "raw.surveys", only=SOURCE_TABLES["surveys"].columns).value
    assert "satisfaction" in shown
    assert not any(v in shown for v in ("P1", "Zhang", "X123", "national_id", "a.csv"))


def test_extra_columns_are_kept_and_reported(tmp_path):
    load, frame = _load(_write(tmp_path / "patients.csv", "patient_id,loyalty_tier\nP1,gold\n"))
    assert load.extra_columns == ["loyalty_tier"] and frame.loyalty_tier.tolist() == ["gold"]


def test_gbk_csv_is_decoded(tmp_path):
    path = _write(tmp_path / "patients.csv", "patient_id,full_name,city\nP1,王芳,深圳\n", encoding="gbk")
    _, frame = _load(path)
    assert frame[["full_name", "city"]].values.tolist() == [["王芳", "深圳"]]
    assert frame._source_file.tolist() == [str(path)]  # lineage names the original file


def test_utf8_bom_is_ignored(tmp_path):
    _, frame = _load(_write(tmp_path / "patients.csv", "\ufeffPatient_ID,full_name\nP1,A\n"))
    assert frame.patient_id.tolist() == ["P1"]


def test_quoted_commas_and_newlines_survive(tmp_path):
    _, frame = _load(_write(tmp_path / "products.csv",
                            'product_id,name,category,description\nA,"Cream, 50 ml",dermatology,"line one\nline two"\n'),
                     "products")
    assert frame.name.tolist() == ["Cream, 50 ml"] and frame.description.tolist() == ["line one\nline two"]


def test_a_ten_megabyte_text_field_loads(tmp_path):
    big = "x" * 10_000_000
    _, frame = _load(_write(tmp_path / "products.csv", f"product_id,name,category,description\nA,B,c,{big}\n"),
                     "products")
    assert len(frame.description[0]) == 10_000_000


def test_parquet_with_wrong_column_types_is_read_as_text(tmp_path):
    path = tmp_path / "orders.parquet"
    pd.DataFrame({"order_id": [1, 2], "patient_id": [101, 102], "product_id": ["A", "B"],
                  "ordered_at": [True, False], "quantity": [1.5, 2.0]}).to_parquet(path)
    _, frame = _load(path, "orders")
    assert frame.patient_id.tolist() == ["101", "102"] and frame.ordered_at.tolist() == ["true", "false"]


def test_a_file_that_is_not_csv_is_refused_with_its_line(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes(b"patient_id\n" + bytes(range(256)) * 4)  # byte 0x0a ends line 2; 0x80 is on line 3
    with pytest.raises(SourceError, match=r"patients\.csv: line 3 is neither UTF-8 nor GBK"):
        _load(path)


def _stage(workdir, tables: dict[str, str]) -> duckdb.DuckDBPyConnection:
    write_tiny_source(workdir["source"], {**TINY_SOURCE, **tables})
    result = materialize_all(build_definitions(Settings.from_env()),
                             make_resources(workdir["source"], workdir["warehouse"], workdir["mlflow"]), STAGE,
                             checks=False)
    assert result.success
    return duckdb.connect(str(workdir["warehouse"]), read_only=True)


def test_row_level_problems_are_quarantined_with_reasons(workdir, pseudonym_env):
    orders = """\
        order_id,line_no,patient_id,product_id,ordered_at,quantity,unit_price,channel
        M1,1,P1,A,2024-01-10,1,10,store
        M2,1,P1,A,20240111,1,10,store
        M3,1,P1,A,2024年01月12日,1,10,store
        M4,1,P1,A,12/01/2024,1,10,store
        M5,1,P1,A,yesterday,1,10,store
        M6,1,P1,A,2024-01-10,1,-4,store
        M7,1,P1,A,2024-01-10,-1,10,store
        M8,1,   ,A,2024-01-10,1,10,store
        M1,1,P1,A,2024-01-10,1,10,store
        M9,1,P404,A,2024-01-10,1,10,store
        M10,1,P1,NOPE,2024-01-10,1,10,store
        """
    con = _stage(workdir, {"orders": orders})
    reasons = dict(con.execute("SELECT order_id, _reason FROM quarantine.orders ORDER BY _source_row").fetchall())
    assert reasons == {
        "M4": "ordered_at is missing or not a valid timestamp",       # day/month ambiguous: not guessed
        "M5": "ordered_at is missing or not a valid timestamp",
        "M6": "unit_price is negative",
        "M7": "quantity is zero or negative (cancellation or return)",
        "M8": "patient_id is missing or blank",
        "M1": "duplicate order_id, line_no; the first row in file order was kept",
        "M9": "unknown patient_id (not in patients)",
        "M10": "unknown product_id (not in products)",
    }
    staged = dict(con.execute("SELECT order_id, CAST(ordered_at AS DATE)::VARCHAR FROM staging.orders").fetchall())
    assert staged == {"M1": "2024-01-10", "M2": "2024-01-11", "M3": "2024-01-12"}


def test_a_failed_run_leaves_the_warehouse_as_it_was(workdir, pseudonym_env):
    con = _stage(workdir, {})
    before = con.execute("SELECT count(*) FROM staging.orders").fetchone()[0]
    con.close()
    (workdir["source"] / "orders.csv").write_text("order_id,product_id\nX,A\n")  # patient_id missing
    result = materialize_all(build_definitions(Settings.from_env()),
                             make_resources(workdir["source"], workdir["warehouse"], workdir["mlflow"]), STAGE,
                             checks=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "orders.csv: required column 'patient_id' is missing" in str(failure.event_specific_data.error.message)
    con = duckdb.connect(str(workdir["warehouse"]), read_only=True)
    assert con.execute("SELECT count(*) FROM staging.orders").fetchone()[0] == before
    assert con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] > 1


def test_orders_without_line_numbers_are_numbered_in_file_order(workdir, pseudonym_env):
    orders = """\
        order_id,patient_id,product_id,ordered_at,quantity,unit_price
        N1,P1,A,2024-01-10,1,10
        N1,P1,B,2024-01-10,1,50
        N2,P1,C,2024-01-11,1,100
        """
    con = _stage(workdir, {"orders": orders})
    lines = con.execute("SELECT order_id, product_id, line_no FROM staging.orders ORDER BY ALL").fetchall()
    assert lines == [("N1", "A", 1), ("N1", "B", 2), ("N2", "C", 1)]
