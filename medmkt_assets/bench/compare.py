"""`python -m medmkt_assets.bench.compare OLD.duckdb NEW.duckdb`: are two warehouses the same?

Every table of the staging, features, marts, restricted and quarantine schemas is read in a
canonical order and compared cell for cell; the tables that differ are printed with the
columns that differ. Used to show a refactor leaves the pipeline's output unchanged (run
the same source through the old and the new code, then compare). Exit 1 on any difference.
"""
from __future__ import annotations

import sys

import duckdb

SCHEMAS = ("staging", "features", "marts", "restricted", "quarantine")


def differences(old_path: str, new_path: str) -> list[str]:
    old, new = duckdb.connect(old_path, read_only=True), duckdb.connect(new_path, read_only=True)
    listing = ("SELECT table_schema || '.' || table_name FROM information_schema.tables "
               f"WHERE table_schema IN {SCHEMAS} ORDER BY 1")
    tables = [r[0] for r in old.execute(listing).fetchall()]
    found = [f"{t}: only in {new_path}" for t in sorted({r[0] for r in new.execute(listing).fetchall()} - set(tables))]
    for table in tables:
        try:
            a, b = (con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchdf() for con in (old, new))
        except duckdb.Error as exc:
            found.append(f"{table}: {str(exc).splitlines()[0]}")
            continue
        if a.shape != b.shape or list(a.columns) != list(b.columns):
            found.append(f"{table}: shape {a.shape} → {b.shape}")
        elif not a.equals(b):
            found.append(f"{table}: columns differ: {[c for c in a.columns if not a[c].equals(b[c])]}")
    print(f"compared {len(tables)} tables: {len(found)} differ")
    return found


if __name__ == "__main__":
    problems = differences(*sys.argv[1:3])
    print("\n".join(problems))
    sys.exit(1 if problems else 0)
