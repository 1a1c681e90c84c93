"""The warehouse comparison used to show a refactor leaves the output unchanged."""
from __future__ import annotations

import duckdb

from medmkt_assets.bench.compare import differences


def _warehouse(path, value: float, extra: bool = False) -> str:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA ops")
    con.execute(f"CREATE TABLE marts.t AS SELECT * FROM (VALUES (2, 'b'), (1, 'a')) v(id, name), "
                f"(SELECT {value} AS score)")
    con.execute("CREATE TABLE ops.ignored AS SELECT now() AS at")  # run bookkeeping is not output
    if extra:
        con.execute("CREATE TABLE marts.new AS SELECT 1 AS x")
    con.close()
    return str(path)


def test_same_output_in_any_row_order_is_equal_and_a_changed_cell_is_not(tmp_path):
    old = _warehouse(tmp_path / "old.duckdb", 0.5)
    assert differences(old, _warehouse(tmp_path / "same.duckdb", 0.5)) == []
    assert differences(old, _warehouse(tmp_path / "changed.duckdb", 0.25)) == ["marts.t: columns differ: ['score']"]
    assert differences(old, _warehouse(tmp_path / "more.duckdb", 0.5, extra=True)) == [
        f"marts.new: only in {tmp_path / 'more.duckdb'}"]


def test_identical_tables_are_decided_inside_duckdb_and_ignored_columns_left_out(tmp_path, monkeypatch):
    old = _warehouse(tmp_path / "old.duckdb", 0.5)
    new = _warehouse(tmp_path / "new.duckdb", 0.5)
    for path, folder in ((old, "/data/run1"), (new, "/data/run2")):
        con = duckdb.connect(path)
        con.execute(f"CREATE TABLE marts.lines AS SELECT range AS id, '{folder}' AS _source_file FROM range(1000)")
        con.close()
    assert differences(old, new) == ["marts.lines: columns differ: ['_source_file']"]
    # identical tables never reach pandas
    monkeypatch.setattr(duckdb.DuckDBPyConnection, "fetchdf", lambda *a: (_ for _ in ()).throw(AssertionError))
    assert differences(old, new, ignore=("_source_file",)) == []


def test_float_noise_within_the_tolerance_is_the_same_and_a_wrong_count_is_not(tmp_path):
    def warehouse(name: str, noise: float, count: int) -> str:
        con = duckdb.connect(str(tmp_path / name))
        con.execute("CREATE SCHEMA marts")
        con.execute(f"CREATE TABLE marts.cells AS SELECT range AS id, range / 3 + {noise} * (range / 3) AS share, "
                    f"CASE WHEN range = 7 THEN {count} ELSE 1 END AS n, [range, 1] AS codes FROM range(100)")
        con.close()
        return str(tmp_path / name)

    old = warehouse("old.duckdb", 0.0, 1)
    assert differences(old, warehouse("noisy.duckdb", 1e-14, 1), rtol=1e-9) == []
    assert differences(old, warehouse("noisy2.duckdb", 1e-14, 1)) == ["marts.cells: columns differ: ['share']"]
    assert differences(old, warehouse("wrong.duckdb", 1e-14, 2), rtol=1e-9) == ["marts.cells: columns differ: ['n']"]
    assert differences(old, warehouse("far.duckdb", 1e-6, 1), rtol=1e-9) == ["marts.cells: columns differ: ['share']"]
