"""The demo world written as real exporters write it: Synthea CSV, FHIR R4 and OMOP CDM.

Each export adapter (lib/sources/adapters) is tested end to end on the project's own world in its
format, so the planted truth (bundles, segments, campaign uplifts) can be checked after
the adapter has mapped the export back onto the canonical tables.

Layouts: synthea-2 / synthea-3 (the CSV headers of Synthea 2.x and 3.x), fhir-bulk (one
`<Type>.000.ndjson` per resource type, relative references, Patient and Condition
gzipped), fhir-bundles (one Synthea-style transaction Bundle per patient, `urn:uuid:`
references, plus a hospitalInformation bundle), omop-5.3 / omop-5.4 (CDM tables with
that version's columns; 5.4 upper-case file names, 5.3 lower-case with an Athena-style
tab-separated concept file).

Everything is DuckDB SQL over the canonical CSV files written with COPY; only the
per-patient Bundle files are written by a Python loop over DuckDB-built JSON. Patient and
order ids are kept (encounter id = order_id, OMOP visit_source_value = order_id), so the
canonical side tables written next to the export still join.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb

from medmkt_assets.demo_data.formats.common import (
    LAYOUTS,
    SIDE_TABLES,
    Exporter,
    stage_world,
)
from medmkt_assets.demo_data.formats.fhir import write_fhir_bulk, write_fhir_bundles
from medmkt_assets.demo_data.formats.omop import write_omop
from medmkt_assets.demo_data.formats.synthea import write_synthea
from medmkt_assets.demo_data.generator import generate

__all__ = ["LAYOUTS", "SIDE_TABLES", "generate_in_layout", "write_layout"]


def _check_layout(layout: str) -> None:
    """Refuse an unknown layout before anything is written."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def write_layout(canonical_dir: Path, out_dir: Path, layout: str) -> dict:
    """Convert a canonical CSV world (generate(..., fmt='csv')) into `layout` inside out_dir.

    Returns {"layout", "files": {file name: rows}}; fhir-bundles also counts "resources" per
    type and lists the per-patient Bundles as "<patient_id>.json": number of files.
    """
    _check_layout(layout)
    family, version = layout.split("-", 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false").fetchall()
        stage_world(con, Path(canonical_dir))
        exporter = Exporter(con, out)
        manifest: dict = {"layout": layout}
        if family == "synthea":
            write_synthea(exporter, version)
        elif family == "omop":
            write_omop(exporter, version)
        elif version == "bulk":
            write_fhir_bulk(exporter)
        else:
            manifest["resources"] = write_fhir_bundles(exporter)
    manifest["files"] = exporter.files
    return manifest


def generate_in_layout(out_dir: str | Path, layout: str, patients: int, seed: int, **generate_kwargs) -> dict:
    """Generate a clean world (no planted bad rows) and write it in `layout` into out_dir.

    The truth goes to `<out>/_truth/`; the side tables no clinical export carries (campaigns,
    contacts, consents, surveys, events) are copied as canonical `<table>.csv` beside the export.
    Returns generate()'s manifest plus "layout" and "files" (every file written: rows).
    """
    _check_layout(layout)
    clash = {"fmt", "with_bad_rows"} & set(generate_kwargs)
    if clash:
        raise ValueError(f"generate_in_layout always writes a clean CSV world; do not pass {sorted(clash)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="medmkt-canonical-") as tmp:
        canonical = Path(tmp)
        manifest = generate(canonical, patients=patients, seed=seed, fmt="csv", with_bad_rows=False,
                            **generate_kwargs)
        written = write_layout(canonical, out, layout)
        if (out / "_truth").exists():
            shutil.rmtree(out / "_truth")
        shutil.move(str(canonical / "_truth"), str(out / "_truth"))
        for table in SIDE_TABLES:
            shutil.copyfile(canonical / f"{table}.csv", out / f"{table}.csv")
            written["files"][f"{table}.csv"] = manifest["rows"][table]
    return {**manifest, **written}
