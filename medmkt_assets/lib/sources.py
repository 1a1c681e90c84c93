"""Loading source files into raw DuckDB tables without losing a row.

Every column is read as text (types are parsed later, in staging, where a bad value
becomes a quarantine row instead of a failed load), header names are matched
case-insensitively, and each row keeps `_source_file` and `_source_row` (1-based data
row in its file) so any staged or quarantined row can be traced back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from medmkt_assets.lib.schema import SourceTable

SOURCE_SUFFIXES = (".csv", ".parquet")


class SourceError(Exception):
    """A source file cannot be loaded; the message names the file and column."""


@dataclass
class RawLoad:
    table: str
    source_file: str | None
    rows: int
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)


def find_source_file(source_dir: Path, table: str) -> Path | None:
    """`<table>.csv` or `<table>.parquet` in source_dir, names matched case-insensitively."""
    if not source_dir.is_dir():
        return None
    matches = sorted(
        p for p in source_dir.iterdir()
        if p.is_file() and p.suffix.lower() in SOURCE_SUFFIXES and p.stem.lower() == table
    )
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise SourceError(f"{source_dir}: more than one file for table '{table}' ({names}); keep one")
    return matches[0] if matches else None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def scan_sql(path: Path) -> str:
    """A DuckDB table function reading every column of the file as text, with row numbers."""
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({sql_literal(str(path))}, file_row_number=true)"
    return (
        f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, "
        "auto_detect=true, strict_mode=false, null_padding=true, max_line_size=67108864)"
    )


def load_raw_table(con: duckdb.DuckDBPyConnection, spec: SourceTable, path: Path | None,
                   target: str) -> RawLoad:
    """(Re)create `target` from the file at `path`, or as an empty table when it is absent.

    The target holds the contract columns (missing optional ones as NULL), any extra
    columns of the file (kept, never silently dropped), `_source_file` and `_source_row`.
    """
    if path is None:
        cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {quote_ident(c)}" for c in spec.columns)
        con.execute(
            f"CREATE OR REPLACE TABLE {target} AS SELECT {cols}, "
            "CAST(NULL AS VARCHAR) AS _source_file, CAST(NULL AS BIGINT) AS _source_row LIMIT 0"
        )
        return RawLoad(spec.name, None, 0)

    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty (expected a header row with columns "
                          f"{', '.join(spec.required_columns)})")
    scan = scan_sql(path)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    except duckdb.Error as exc:
        raise SourceError(f"{path}: cannot be read as {path.suffix.lstrip('.')} ({_first_line(exc)})") from exc

    by_lower: dict[str, str] = {}
    for name, *_ in described:
        if name == "file_row_number":
            continue
        key = name.strip().lower()
        if key in by_lower:
            raise SourceError(f"{path}: column '{key}' appears twice (as '{by_lower[key]}' and '{name}')")
        by_lower[key] = name

    missing_required = [c for c in spec.required_columns if c not in by_lower]
    if missing_required:
        raise SourceError(
            f"{path}: required column '{missing_required[0]}' is missing "
            f"(found columns: {', '.join(by_lower) or 'none'})"
        )
    select = []
    missing_optional = []
    for column in spec.columns:
        if column in by_lower:
            select.append(f"CAST({quote_ident(by_lower[column])} AS VARCHAR) AS {quote_ident(column)}")
        else:
            missing_optional.append(column)
            select.append(f"CAST(NULL AS VARCHAR) AS {quote_ident(column)}")
    extras = [c for c in by_lower if c not in spec.columns and not c.startswith("_source")]
    select += [f"CAST({quote_ident(by_lower[c])} AS VARCHAR) AS {quote_ident(c)}" for c in extras]
    try:
        # CSV scans have no row-number column: land the file first (insertion order is
        # preserved), then number the rows by rowid.
        con.execute(f"CREATE OR REPLACE TEMP TABLE _medmkt_load AS SELECT * FROM {scan}")
        row_no = "file_row_number + 1" if path.suffix.lower() == ".parquet" else "row_number() OVER (ORDER BY rowid)"
        con.execute(
            f"CREATE OR REPLACE TABLE {target} AS SELECT {', '.join(select)}, "
            f"{sql_literal(str(path))} AS _source_file, CAST({row_no} AS BIGINT) AS _source_row "
            "FROM _medmkt_load ORDER BY _source_row"
        )
        con.execute("DROP TABLE _medmkt_load")
    except duckdb.Error as exc:
        raise SourceError(f"{path}: could not be loaded ({_first_line(exc)})") from exc
    rows = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    return RawLoad(spec.name, str(path), rows, extras, missing_optional)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
