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

SCHEMAS = ("staging", "features", "marts", "restricted", "quarantine")


def _same_column(a: pd.Series, b: pd.Series, rtol: float) -> bool:
    if a.equals(b):
        return True
    if rtol and pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
        return bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=0.0, equal_nan=True))
    return False


def _identical(old_path: str, new_path: str, table: str, ignore: tuple[str, ...]) -> bool:
    """True when both copies hold the same rows (as multisets, ignored columns left out), decided
    inside DuckDB; False when they differ or cannot be compared there (views over files resolve
    only in their own warehouse: the Spark engine's)."""
    con = duckdb.connect()
    try:
        con.execute("SET memory_limit = '4GB'")
        con.execute("ATTACH ? AS old_wh (READ_ONLY)", [old_path])
        con.execute("ATTACH ? AS new_wh (READ_ONLY)", [new_path])
        columns = [[r[0] for r in con.execute(f"DESCRIBE {side}.{table}").fetchall()] for side in ("old_wh", "new_wh")]
        if columns[0] != columns[1]:
            return False
        kept = ", ".join(f'"{c}"' for c in columns[0] if c not in ignore)
        for first, second in (("old_wh", "new_wh"), ("new_wh", "old_wh")):
            extra = con.execute(f"SELECT count(*) FROM (SELECT {kept} FROM {first}.{table} EXCEPT ALL "
                                f"SELECT {kept} FROM {second}.{table})").fetchone()[0]
            if extra:
                return False
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def differences(old_path: str, new_path: str, rtol: float = 0.0, schemas: tuple[str, ...] = SCHEMAS,
                ignore: tuple[str, ...] = ()) -> list[str]:
    old, new = duckdb.connect(old_path, read_only=True), duckdb.connect(new_path, read_only=True)
    listing = ("SELECT table_schema || '.' || table_name FROM information_schema.tables "
               f"WHERE table_schema IN ({', '.join(repr(s) for s in schemas)}) ORDER BY 1")
    tables = [r[0] for r in old.execute(listing).fetchall()]
    found = [f"{t}: only in {new_path}" for t in sorted({r[0] for r in new.execute(listing).fetchall()} - set(tables))]
    for table in tables:
        if _identical(old_path, new_path, table, ignore):
            continue
        try:
            a, b = (con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchdf().drop(
                columns=list(ignore), errors="ignore") for con in (old, new))
        except duckdb.Error as exc:
            found.append(f"{table}: {str(exc).splitlines()[0]}")
            continue
        if a.shape != b.shape or list(a.columns) != list(b.columns):
            found.append(f"{table}: shape {a.shape} → {b.shape}")
        elif not a.equals(b):
            differ = [c for c in a.columns if not _same_column(a[c], b[c], rtol)]
            if differ:
                found.append(f"{table}: columns differ: {differ}")
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
