"""Alerts about failed runs and rejected batches: a log line and a JSON file per alert.

`AlertSink` is the seam for e-mail or chat later: anything with `send(alert: dict)`.
Alerts carry run ids, job names, file names and error messages, never patient data.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

log = logging.getLogger("medmkt.alerts")


class AlertSink(Protocol):
    def send(self, alert: dict) -> None: ...


class FileAlertSink:
    """Writes `<folder>/<UTC time>_<kind>_<id>.json` (owner read/write only) and logs one line."""

    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, alert: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        ident = str(alert.get("id", "alert")).replace("/", "_")[:40]
        path = self.folder / f"{stamp}_{alert.get('kind', 'alert')}_{ident}.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"raised_at": stamp, **alert}, handle, indent=2, ensure_ascii=False)
        log.error("medmkt alert (%s): %s — %s", alert.get("kind"), alert.get("title"), path)
        return path
