"""Chunked table writers, so a million patients never have to sit in memory at once.

Every column is written as text: planted bad values ("not-a-date", a negative
quantity) must survive in Parquet as well as in CSV, exactly as a messy export would
carry them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq


def as_text_table(frame: pd.DataFrame, columns: tuple[str, ...]) -> pa.Table:
    """The frame as an all-string Arrow table with exactly `columns` (missing ones empty)."""
    arrays = []
    for name in columns:
        if name in frame.columns:
            array = pa.array(frame[name], from_pandas=True)
            if not pa.types.is_string(array.type):
                array = pc.cast(array, pa.string())
        else:
            array = pa.nulls(len(frame), pa.string())
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=list(columns))


class TableWriter:
    """Appends chunks of one table to `<out>/<name>.csv` or `.parquet`."""

    def __init__(self, out_dir: Path, name: str, columns: tuple[str, ...], fmt: str = "csv"):
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"format must be csv or parquet, not {fmt!r}")
        self.path = out_dir / f"{name}.{fmt}"
        self.columns = columns
        self.fmt = fmt
        self.rows = 0
        self._schema = pa.schema([(c, pa.string()) for c in columns])
        self._writer: pa_csv.CSVWriter | pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = as_text_table(frame, self.columns)
        if self._writer is None:
            if self.fmt == "csv":
                options = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
                self._writer = pa_csv.CSVWriter(str(self.path), self._schema, write_options=options)
            else:
                self._writer = pq.ParquetWriter(str(self.path), self._schema, compression="zstd")
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is None:  # nothing written: still leave a file with the header
            self.write(pd.DataFrame(columns=list(self.columns)))
        self._writer.close()

