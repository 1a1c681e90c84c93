"""`python -m medmkt_assets.bench.compare OLD.duckdb NEW.duckdb [--rtol 1e-9]`: are two warehouses the same?

Every table of the staging, features, marts, restricted and quarantine schemas is read in a
canonical order and compared cell for cell; the tables that differ are printed with the
columns that differ. Two uses: a refactor leaves the pipeline's output unchanged (the same
source through the old and the new code, exact), and the Spark engine gives what DuckDB gives
(the same source on both engines, floating-point columns within `--rtol`: the engines add up
in different orders). Exit 1 on any difference.

Tables are first compared inside DuckDB (both warehouses attached, EXCEPT ALL both ways, in a
bounded buffer): at 1,000,000 patients reading both copies of every table into pandas needs more
memory than the machine has. Only a table that is not identical there is read into pandas, to
apply `--rtol` and name the columns that differ. `--ignore` leaves columns out (`_source_file`
names the folder a run read, which differs between two runs of the same data).
"""
from __future__ import annotations

import argparse
import sys

import duckdb
import numpy as np
import pandas as pd

from medmkt_assets.lib.engine.sql import quote_ident

SCHEMAS = ("staging", "features", "marts", "restricted", "quarantine")
FLOATS = ("DOUBLE", "FLOAT", "REAL")


def _same_column(a: pd.Series, b: pd.Series, rtol: float) -> bool:
    if a.equals(b):
        return True
    if rtol and pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
        return bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=0.0, equal_nan=True))
    return False


class _NotHere(Exception):
    """The table cannot be read by an attached warehouse (views over files resolve only in their
    own warehouse: the Spark engine's); pandas compares it."""


def _in_duckdb(old_path: str, new_path: str, table: str, ignore: tuple[str, ...], rtol: float) -> str | None:
    """What differs in `table` (None: nothing), decided inside DuckDB in a 4 GB buffer that spills.

    Identical rows (as multisets) are settled by EXCEPT ALL both ways. Otherwise both copies are
    put in the canonical order (every column) and compared row by row and column by column, floats
    within `rtol` of the new value (numpy's allclose with atol 0)."""
    con = duckdb.connect()
    try:
        return _compare_attached(con, old_path, new_path, table, ignore, rtol)
    except duckdb.Error as exc:
        raise _NotHere from exc
    finally:
        con.close()


def _compare_attached(con: duckdb.DuckDBPyConnection, old_path: str, new_path: str, table: str,
                      ignore: tuple[str, ...], rtol: float) -> str | None:
    con.execute("SET memory_limit = '4GB'")
    con.execute("ATTACH ? AS old_wh (READ_ONLY)", [old_path])
    con.execute("ATTACH ? AS new_wh (READ_ONLY)", [new_path])
    described = [con.execute(f"DESCRIBE {side}.{table}").fetchall() for side in ("old_wh", "new_wh")]
    counts = [con.execute(f"SELECT count(*) FROM {side}.{table}").fetchone()[0] for side in ("old_wh", "new_wh")]
    kept = [[(name, kind) for name, kind, *_ in d if name not in ignore] for d in described]
    if [n for n, _ in kept[0]] != [n for n, _ in kept[1]] or counts[0] != counts[1]:
        return f"shape {(counts[0], len(kept[0]))} → {(counts[1], len(kept[1]))}"
    names = ", ".join(quote_ident(n) for n, _ in kept[0])
    for first, second in (("old_wh", "new_wh"), ("new_wh", "old_wh")):
        if con.execute(f"SELECT count(*) FROM (SELECT {names} FROM {first}.{table} EXCEPT ALL "
                       f"SELECT {names} FROM {second}.{table})").fetchone()[0]:
            break
    else:
        return None
    for side in ("old_wh", "new_wh"):
        con.execute(f"CREATE TEMP TABLE {side}_rows AS SELECT row_number() OVER (ORDER BY {names}) AS _rn, "
                    f"{names} FROM {side}.{table}")
    checks = []
    for (name, kind), (_, new_kind) in zip(*kept):
        a, b = f"a.{quote_ident(name)}", f"b.{quote_ident(name)}"
        same = f"{a} IS NOT DISTINCT FROM {b}"
        if rtol and kind in FLOATS and new_kind in FLOATS:
            same = f"({same} OR abs({a} - {b}) <= {rtol!r} * abs({b}))"
        checks.append(f"count(*) FILTER (WHERE NOT {same})")
    mismatches = con.execute(f"SELECT {', '.join(checks)} FROM old_wh_rows a JOIN new_wh_rows b USING (_rn)"
                             ).fetchone()
    differ = [name for (name, _), n in zip(kept[0], mismatches) if n]
    return f"columns differ: {differ}" if differ else None


def _in_pandas(old: duckdb.DuckDBPyConnection, new: duckdb.DuckDBPyConnection, table: str,
               ignore: tuple[str, ...], rtol: float) -> str | None:
    """What differs in `table`, read through each warehouse's own connection into pandas."""
    try:
        a, b = (con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchdf().drop(
            columns=list(ignore), errors="ignore") for con in (old, new))
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return f"shape {a.shape} → {b.shape}"
    if a.equals(b):
        return None
    differ = [c for c in a.columns if not _same_column(a[c], b[c], rtol)]
    return f"columns differ: {differ}" if differ else None


def differences(old_path: str, new_path: str, rtol: float = 0.0, schemas: tuple[str, ...] = SCHEMAS,
                ignore: tuple[str, ...] = ()) -> list[str]:
    old, new = duckdb.connect(old_path, read_only=True), duckdb.connect(new_path, read_only=True)
    listing = ("SELECT table_schema || '.' || table_name FROM information_schema.tables "
               f"WHERE table_schema IN ({', '.join(repr(s) for s in schemas)}) ORDER BY 1")
    tables = [r[0] for r in old.execute(listing).fetchall()]
    found = [f"{t}: only in {new_path}" for t in sorted({r[0] for r in new.execute(listing).fetchall()} - set(tables))]
    for table in tables:
        try:
            problem = _in_duckdb(old_path, new_path, table, ignore, rtol)
        except _NotHere:
            problem = _in_pandas(old, new, table, ignore, rtol)
        if problem:
            found.append(f"{table}: {problem}")
    print(f"compared {len(tables)} tables: {len(found)} differ")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance of floating-point cells")
    parser.add_argument("--ignore", action="append", default=[], metavar="COLUMN",
                        help="leave this column out wherever it is (repeatable), e.g. _source_file")
    args = parser.parse_args()
    problems = differences(args.old, args.new, args.rtol, ignore=tuple(args.ignore))
    print("\n".join(problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
