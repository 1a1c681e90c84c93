"""Adapters that map other export formats onto the canonical source tables, as SQL.

Each adapter returns, per canonical table, a DuckDB SELECT yielding the contract
columns as text plus `_source_file` and `_source_row`, or None when the format has
no such table. Staging then treats the result exactly like canonical files.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from medmkt_assets.lib.adapters.mapped import MappedExport
from medmkt_assets.lib.adapters.synthea import SyntheaExport


def open_adapter(con: duckdb.DuckDBPyConnection, source_format: str, source_dir: Path,
                 mapping: str) -> SyntheaExport | MappedExport:
    """The adapter for a non-canonical MEDMKT_SOURCE_FORMAT; raises SourceError when unusable."""
    if source_format == "synthea":
        return SyntheaExport(con, source_dir)
    if source_format == "mapped":
        return MappedExport(con, mapping)
    raise ValueError(f"no adapter for source format {source_format!r}")


def adapter_files(adapter: SyntheaExport | MappedExport) -> list[Path]:
    """The files an adapter reads, for the source inventory."""
    if isinstance(adapter, SyntheaExport):
        return sorted(adapter.dir.glob("*.csv"))
    return sorted({adapter._file(t, e) for t, e in adapter.tables.items()})
