"""Loading source files into raw DuckDB tables without losing a row.

Every column is read as text (types are parsed later, in staging, where a bad value
becomes a quarantine row instead of a failed load), header names are matched
case-insensitively, and each row keeps `_source_file` and `_source_row` (1-based data
row in its file) so any staged or quarantined row can be traced back. A table may come
from several files: the source file plus accepted incoming batches.
"""
from __future__ import annotations

import codecs
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal
from medmkt_assets.lib.engine.warehouse import Session, WarehouseError
from medmkt_assets.lib.sources.schema import SourceTable

SOURCE_SUFFIXES = (".csv", ".parquet")


class SourceError(Exception):
    """A source file cannot be loaded; the message names the file and column."""


@dataclass
class RawLoad:
    table: str
    source_files: list[str]
    rows: int
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)


def find_table_file(folder: Path, table: str, suffixes: tuple[str, ...] = SOURCE_SUFFIXES) -> Path | None:
    """`<table><suffix>` in folder, the name matched case-insensitively (PERSON.csv, person.csv);
    more than one match is refused, naming the files."""
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.iterdir() if p.is_file() and any(
        p.name.lower() == f"{table}{suffix}" for suffix in suffixes))
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise SourceError(f"{folder}: more than one file for table '{table}' ({names}); keep one")
    return matches[0] if matches else None


def find_source_file(source_dir: Path, table: str) -> Path | None:
    """`<table>.csv` or `<table>.parquet` in source_dir, names matched case-insensitively."""
    return find_table_file(source_dir, table, SOURCE_SUFFIXES)


def scan_sql(path: Path, parallel: bool = True) -> str:
    """A DuckDB table function reading every column of the file as text."""
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({sql_literal(str(path))}, file_row_number=true)"
    return (
        f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, "
        "auto_detect=true, strict_mode=false, null_padding=true, max_line_size=67108864"
        f"{'' if parallel else ', parallel=false'})"
    )


def empty_table_sql(spec: SourceTable) -> str:
    cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {quote_ident(c)}" for c in spec.columns)
    return (f"SELECT {cols}, CAST(NULL AS VARCHAR) AS _source_file, "
            "CAST(NULL AS BIGINT) AS _source_row LIMIT 0")


def _first_bad_utf8_line(path: Path) -> int | None:
    """1-based line of the first byte sequence that is not UTF-8, or None when the file is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return line + block[:exc.start].count(b"\n")
            line += block.count(b"\n")
    return None


def utf8_copy(path: Path) -> Path:
    """The CSV itself when it is UTF-8; else a temporary UTF-8 copy of a GB18030/GBK file.

    Chinese exports are often GBK. A file that is neither (binary data, another
    encoding) is refused with the line of the first undecodable byte.
    """
    bad_line = _first_bad_utf8_line(path)
    if bad_line is None:
        return path
    raw = path.read_bytes()
    if b"\x00" not in raw:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            handle, name = tempfile.mkstemp(suffix=".csv", prefix="medmkt_utf8_")
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            return Path(name)
    raise SourceError(f"{path}: line {bad_line} is neither UTF-8 nor GBK/GB18030 text "
                      "(save the export as UTF-8 CSV, or as Parquet)")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def _land_file(con: Session, spec: SourceTable, path: Path, landing: str) -> tuple[str, RawLoad]:
    """Copy one file into a temp table and return a SELECT mapping it onto the contract columns."""
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty (expected a header row with columns "
                          f"{', '.join(spec.required_columns)})")
    readable = path
    if path.suffix.lower() == ".csv":
        readable = utf8_copy(path)
    try:
        if _is_parquet(path):  # read where it lies (a view): Parquet numbers its own rows
            con.execute(f"CREATE OR REPLACE TEMP VIEW {landing} AS SELECT * FROM {scan_sql(readable)}")
        else:
            # CSV scans have no row-number column: land the file first (insertion order is
            # preserved), then number the rows in that order.
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {landing} AS SELECT * FROM {scan_sql(readable)}")
            except WarehouseError as exc:
                if "parallel=false" not in str(exc):  # quoted line breaks need the serial CSV reader
                    raise
                con.execute(f"CREATE OR REPLACE TEMP TABLE {landing} AS SELECT * FROM {scan_sql(readable, False)}")
        described = con.execute(f"DESCRIBE {landing}").fetchall()
    except WarehouseError as exc:
        raise SourceError(f"{path}: cannot be read as {path.suffix.lstrip('.')} ({masked_error(exc)})") from exc
    finally:
        if readable != path:
            readable.unlink(missing_ok=True)

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
        # Name only the contract columns found: in a file without a header row the
        # "column names" are the first row's values, which may identify a patient.
        known = [c for c in by_lower if c in spec.columns]
        raise SourceError(
            f"{path}: required column '{missing_required[0]}' is missing (the header has {len(by_lower)} "
            f"column(s); contract columns among them: {', '.join(known) or 'none'} - is the header row missing?)"
        )
    select, missing_optional = [], []
    for column in spec.columns:
        if column in by_lower:
            select.append(f"CAST({quote_ident(by_lower[column])} AS VARCHAR) AS {quote_ident(column)}")
        else:
            missing_optional.append(column)
            select.append(f"CAST(NULL AS VARCHAR) AS {quote_ident(column)}")
    extras = [c for c in by_lower if c not in spec.columns and not c.startswith("_source")]
    select += [f"CAST({quote_ident(by_lower[c])} AS VARCHAR) AS {quote_ident(c)}" for c in extras]
    row_no = "file_row_number + 1" if _is_parquet(path) else "row_number() OVER (ORDER BY rowid)"
    sql = (f"SELECT {', '.join(select)}, {sql_literal(str(path))} AS _source_file, "
           f"CAST({row_no} AS BIGINT) AS _source_row FROM {landing}")
    return sql, RawLoad(spec.name, [str(path)], 0, extras, missing_optional)


def load_raw_table(con: Session, spec: SourceTable, paths: list[Path],
                   target: str) -> RawLoad:
    """(Re)create `target` from the files (in order), or as an empty table when there are none.

    The target holds the contract columns (missing optional ones as NULL), any extra
    columns of the files (kept, never silently dropped), `_source_file` and `_source_row`.
    """
    if not paths:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS {empty_table_sql(spec)}")
        return RawLoad(spec.name, [], 0)
    selects, loads = [], []
    for i, path in enumerate(paths):
        sql, load = _land_file(con, spec, path, f"_medmkt_load_{i}")
        selects.append(sql)
        loads.append(load)
    try:
        # Rows stay in load order (the files in the order given, then row order): staging
        # keeps the first row of a duplicated key in this order. One Parquet file is read in
        # that order already (DuckDB keeps a scan's order), and sorting 20 M rows again costs a
        # third of the load.
        if len(paths) == 1 and _is_parquet(paths[0]):
            con.execute(f"CREATE OR REPLACE TABLE {target} AS {selects[0]}")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * EXCLUDE (_medmkt_file_no) FROM ("
                        + " UNION ALL BY NAME ".join(f"(SELECT *, {i} AS _medmkt_file_no FROM ({s}))"
                                                     for i, s in enumerate(selects))
                        + ") ORDER BY _medmkt_file_no, _source_row")
    except WarehouseError as exc:
        raise SourceError(f"{paths[0]}: could not be loaded ({masked_error(exc)})") from exc
    finally:
        for i, path in enumerate(paths):
            con.execute(f"DROP {'VIEW' if _is_parquet(path) else 'TABLE'} IF EXISTS _medmkt_load_{i}")
    rows = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    extras = sorted({c for load in loads for c in load.extra_columns})
    missing = sorted(set.intersection(*(set(load.missing_optional_columns) for load in loads)))
    return RawLoad(spec.name, [str(p) for p in paths], rows, extras, missing)


def load_raw_from_select(con: Session, spec: SourceTable, select_sql: str | None,
                         target: str, label: str) -> RawLoad:
    """(Re)create `target` from an adapter's SELECT that yields the contract columns as text
    plus `_source_file` and `_source_row` (None: the format has no such table)."""
    if select_sql is None:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS {empty_table_sql(spec)}")
        return RawLoad(spec.name, [], 0)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS {select_sql}")
    except WarehouseError as exc:
        raise SourceError(f"{label}: could not be mapped onto table {spec.name} ({masked_error(exc)})") from exc
    have = {r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()}
    missing = [c for c in spec.columns if c not in have]
    for column in missing:
        con.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(column)} VARCHAR")
    rows = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    return RawLoad(spec.name, [label], rows, [], missing)


def append_batches(con: Session, spec: SourceTable, batches: list[Path], target: str,
                   load: RawLoad) -> RawLoad:
    """Append canonical batch files (the drop zone's accepted batches) to an existing raw table."""
    if not batches:
        return load
    staging_table = f"_medmkt_batches_{spec.name}"
    batch = load_raw_table(con, spec, batches, staging_table)
    have = {r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()}
    if {r[0] for r in con.execute(f"DESCRIBE {staging_table}").fetchall()} <= have:
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {staging_table}")
    else:  # the batch brings extra columns: rebuild with them
        con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {target} "
                    f"UNION ALL BY NAME SELECT * FROM {staging_table}")
    con.execute(f"DROP TABLE {staging_table}")
    return RawLoad(spec.name, load.source_files + batch.source_files, load.rows + batch.rows,
                   sorted(set(load.extra_columns) | set(batch.extra_columns)), load.missing_optional_columns)


def masked_error(exc: Exception) -> str:
    """The engine's first error line with quoted values masked: DuckDB quotes the offending
    cell ("Could not convert string 'P000123' to INT32"), which may be an identifier. Names are
    masked too (in a file without a header row they are a patient's values): adapters check the
    columns they need before any SQL runs, so a user sees those by name."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)
