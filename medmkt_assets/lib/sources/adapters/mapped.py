"""Mapped exports: a YAML file says which column of which file is which canonical column.

    tables:
      orders:
        file: online_retail.csv      # relative to the mapping file (CSV or Parquet)
        delimiter: ","               # optional, CSV only
        encoding: utf-8              # optional: utf-8, utf-16 or latin-1
        distinct_on: null            # optional canonical column: keep the first row per value
        columns:
          order_id: InvoiceNo                        # a source column
          channel: {constant: online}                # a constant
          ordered_at: {column: InvoiceDate, format: "%m/%d/%Y %H:%M"}  # a date format
          line_no: {sql: "row_number() OVER (PARTITION BY InvoiceNo ORDER BY _source_row)"}

`sql` expressions see the source columns by name and `_source_row`. Canonical columns
that are not mapped are NULL. Every source row stays traceable by `_source_row`.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal
from medmkt_assets.lib.engine.warehouse import Session, WarehouseError
from medmkt_assets.lib.sources.files import SourceError
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

ENCODINGS = ("utf-8", "utf-16", "latin-1")


class MappedExport:
    """Reads and validates the mapping once; yields the canonical SELECT for each table."""

    def __init__(self, con: Session, mapping_path: str | Path):
        self.path = Path(mapping_path)
        if not str(mapping_path) or not self.path.is_file():
            raise SourceError(f"MEDMKT_SOURCE_MAPPING={mapping_path!r}: mapping file not found")
        try:
            spec = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SourceError(f"{self.path}: not valid YAML ({exc})") from exc
        self.tables = spec.get("tables") or {}
        if not isinstance(self.tables, dict):
            raise SourceError(f"{self.path}: 'tables' must map canonical table names to file mappings")
        unknown = sorted(set(self.tables) - set(SOURCE_TABLES))
        if unknown:
            raise SourceError(f"{self.path}: unknown table(s) {', '.join(unknown)}; "
                              f"expected some of {', '.join(SOURCE_TABLES)}")
        self.columns = {}
        for table, entry in self.tables.items():
            self.columns[table] = self._validate(con, table, entry)
        self.files = sorted({self._file(t, e) for t, e in self.tables.items()})
        self.notes = {"layout": f"mapped by {self.path.name}",
                      "tables_mapped": ", ".join(self.tables) or "none"}

    def _file(self, table: str, entry: dict) -> Path:
        if not isinstance(entry, dict) or "file" not in entry:
            raise SourceError(f"{self.path}: table '{table}' needs a 'file'")
        file = Path(entry["file"])
        return file if file.is_absolute() else (self.path.parent / file)

    def _scan(self, table: str) -> str:
        entry = self.tables[table]
        file = self._file(table, entry)
        if file.suffix.lower() == ".parquet":
            return f"(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _source_row " \
                   f"FROM read_parquet({sql_literal(str(file))}, file_row_number=true))"
        options = ["header=true", "all_varchar=true", "strict_mode=false", "null_padding=true"]
        if entry.get("delimiter"):
            options.append(f"delim={sql_literal(entry['delimiter'])}")
        encoding = str(entry.get("encoding", "utf-8")).lower()
        if encoding not in ENCODINGS:
            raise SourceError(f"{self.path}: table '{table}': encoding {encoding!r} is not supported "
                              f"(use one of {', '.join(ENCODINGS)}, or re-save the file as UTF-8)")
        options.append(f"encoding={sql_literal(encoding)}")
        # Land in file order first, then number rows, so _source_row is the data row in the file.
        return (f"(SELECT *, row_number() OVER () AS _source_row FROM "
                f"read_csv({sql_literal(str(file))}, {', '.join(options)}))")

    def _validate(self, con: Session, table: str, entry: dict) -> set[str]:
        file = self._file(table, entry)
        if not file.is_file():
            raise SourceError(f"{self.path}: table '{table}': file {file} not found")
        try:
            have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {self._scan(table)}").fetchall()}
        except WarehouseError as exc:
            raise SourceError(f"{file}: cannot be read ({str(exc).splitlines()[0]})") from exc
        for canonical, source in (entry.get("columns") or {}).items():
            if canonical not in SOURCE_TABLES[table].columns:
                raise SourceError(f"{self.path}: table '{table}': '{canonical}' is not a canonical column")
            column = source if isinstance(source, str) else (source or {}).get("column")
            if column is not None and column not in have:
                raise SourceError(f"{file}: column '{column}' (mapped to {table}.{canonical}) is missing")
        for required in SOURCE_TABLES[table].required_columns:
            if required not in (entry.get("columns") or {}):
                raise SourceError(f"{self.path}: table '{table}': required column '{required}' is not mapped")
        return have

    @staticmethod
    def _expression(source) -> str:
        if isinstance(source, str):
            return f"CAST({quote_ident(source)} AS VARCHAR)"
        if "constant" in source:
            return sql_literal(str(source["constant"]))
        if "sql" in source:
            return f"CAST(({source['sql']}) AS VARCHAR)"
        if "column" in source and "format" in source:
            column = quote_ident(source["column"])
            return (f"coalesce(strftime(try_strptime(trim({column}), {sql_literal(source['format'])}), "
                    f"'%Y-%m-%dT%H:%M:%S'), CAST({column} AS VARCHAR))")
        if "column" in source:
            return f"CAST({quote_ident(source['column'])} AS VARCHAR)"
        raise SourceError(f"mapping entry {source!r}: use a column name, constant, sql, or column+format")

    def select(self, table: str) -> str | None:
        entry = self.tables.get(table)
        if entry is None:
            return None
        mapping = entry.get("columns") or {}
        select = [f"{self._expression(mapping[c])} AS {quote_ident(c)}" if c in mapping
                  else f"CAST(NULL AS VARCHAR) AS {quote_ident(c)}" for c in SOURCE_TABLES[table].columns]
        body = (f"SELECT {', '.join(select)}, {sql_literal(str(self._file(table, entry)))} AS _source_file, "
                f"CAST(_source_row AS BIGINT) AS _source_row FROM {self._scan(table)}")
        distinct_on = entry.get("distinct_on")
        if distinct_on:
            # One row per key (the first in file order); the other rows are repeats of the same
            # entity in a transactions file, not data to validate again.
            body = (f"SELECT * EXCLUDE (_rank) FROM (SELECT *, row_number() OVER (PARTITION BY "
                    f"{quote_ident(distinct_on)} ORDER BY _source_row) AS _rank FROM ({body})) WHERE _rank = 1")
        return f"SELECT * FROM ({body}) ORDER BY _source_row"
