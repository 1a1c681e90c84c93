"""Adapters that map other export formats onto the canonical source tables, as SQL.

Each adapter (see `common.ExportAdapter`) validates its input once and returns, per
canonical table, a DuckDB SELECT yielding the contract columns as text plus
`_source_file` and `_source_row`, or None when the format has no such table. Staging
then treats the result exactly like canonical files. Tables a format lacks (campaigns,
consents, surveys, events) may sit beside the export as canonical `<table>.csv` files.
"""
from __future__ import annotations

from pathlib import Path

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.sources.adapters.common import ExportAdapter

EXPORT_FORMATS = ("synthea", "fhir", "omop", "mapped")


def open_adapter(con: Session, source_format: str, source_dir: Path,
                 mapping: str, native_batches: list[Path] = ()) -> ExportAdapter:
    """The adapter for a non-canonical MEDMKT_SOURCE_FORMAT; raises SourceError when unusable.
    `native_batches`: accepted drop-zone files in the export's own format (FHIR only)."""
    if source_format == "synthea":
        from medmkt_assets.lib.sources.adapters.synthea import SyntheaExport
        return SyntheaExport(con, source_dir)
    if source_format == "fhir":
        from medmkt_assets.lib.sources.adapters.fhir import FhirExport
        return FhirExport(con, source_dir, list(native_batches))
    if source_format == "omop":
        from medmkt_assets.lib.sources.adapters.omop import OmopExport
        return OmopExport(con, source_dir)
    if source_format == "mapped":
        from medmkt_assets.lib.sources.adapters.mapped import MappedExport
        return MappedExport(con, mapping)
    raise ValueError(f"no adapter for source format {source_format!r}; expected one of {', '.join(EXPORT_FORMATS)}")
