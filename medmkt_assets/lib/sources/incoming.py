"""The incoming drop zone: `<MEDMKT_INCOMING_DIR>/<table>/<file>.csv|.parquet`, and for a FHIR
source also `<MEDMKT_INCOMING_DIR>/export/<file>.ndjson[.gz]|.json` (the export's own format,
e.g. an incremental Bulk Data `_since` export).

A batch is taken only when it is completely written (not a dot-file or `*.tmp`, and
the same size on two looks), identified by the SHA-256 of its content (a renamed copy is
the same batch, a changed file is a new one), probed with the same loader the pipeline
uses, then moved: into `_accepted/<table>/` (where ingestion reads it, with its name
kept in `_source_file` lineage), `_rejected/<table>/` with a `.reason.txt` beside it,
or `_duplicates/<table>/`. A moved file is never looked at again, so a restart does not
replay batches.
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from medmkt_assets.lib.engine.warehouse import scratch
from medmkt_assets.lib.sources.files import SOURCE_SUFFIXES, SourceError, load_raw_table
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

ACCEPTED, REJECTED, DUPLICATES = "_accepted", "_rejected", "_duplicates"
NATIVE = "export"  # the folder of batches in the source's own format
NATIVE_SUFFIXES = {"fhir": (".ndjson", ".ndjson.gz", ".json")}


@dataclass(frozen=True)
class Candidate:
    table: str
    path: Path
    size: int


def scan(incoming: Path, source_format: str = "canonical") -> list[Candidate]:
    """Batch files waiting in the drop zone (per known table, and `export/` in the source's own
    format where it has one), oldest first."""
    found = []
    if not incoming.is_dir():
        return found
    folders = {table: SOURCE_SUFFIXES for table in SOURCE_TABLES}
    if source_format in NATIVE_SUFFIXES:
        folders[NATIVE] = NATIVE_SUFFIXES[source_format]
    for table, suffixes in folders.items():
        folder = incoming / table
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            if (path.is_file() and not name.startswith(".") and not name.endswith(".tmp")
                    and name.lower().endswith(suffixes)):
                found.append(Candidate(table, path, path.stat().st_size))
    return sorted(found, key=lambda c: (c.path.stat().st_mtime, str(c.path)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def already_accepted(incoming: Path, table: str, digest: str) -> bool:
    folder = incoming / ACCEPTED / table
    return folder.is_dir() and any(p.name.split("_")[1:2] == [digest[:16]] for p in folder.iterdir())


def probe(table: str, path: Path) -> str | None:
    """Why the batch cannot be loaded (file, column), or None when it loads."""
    if table == NATIVE:
        from medmkt_assets.lib.sources.adapters.fhir import (
            probe_file,  # the only format with native batches
        )
        return probe_file(path)
    con = scratch()
    try:
        load_raw_table(con, SOURCE_TABLES[table], [path], "probe")
        return None
    except SourceError as exc:
        return str(exc)
    finally:
        con.close()


def _move(path: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.move(str(path), target)
    return target


def accept(incoming: Path, candidate: Candidate, digest: str) -> Path:
    """Move into `_accepted/<table>/<UTC time>_<hash16>_<original name>` (sorted = arrival order)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return _move(candidate.path, incoming / ACCEPTED / candidate.table, f"{stamp}_{digest[:16]}_{candidate.path.name}")


def reject(incoming: Path, candidate: Candidate, reason: str) -> Path:
    target = _move(candidate.path, incoming / REJECTED / candidate.table, candidate.path.name)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    return target


def set_aside_duplicate(incoming: Path, candidate: Candidate) -> Path:
    return _move(candidate.path, incoming / DUPLICATES / candidate.table, candidate.path.name)
