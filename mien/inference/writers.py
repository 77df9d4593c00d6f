"""Rows out: one flat record per face (or per face-less / unreadable input) as JSON lines,
CSV, Parquet or a pandas DataFrame, with the same columns in every format."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from mien.errors import MienError, require
from mien.inference.pipeline import Row
from mien.types import Face

Format = Literal["jsonl", "csv", "parquet"]
FORMATS = ("jsonl", "csv", "parquet")
BASE_COLUMNS = (
    "source", "frame", "timestamp", "status", "message", "detector", "face", "track_id",
    "x1", "y1", "x2", "y2", "score", "landmarks",
)  # fmt: skip


def columns(labels: Mapping[str, Sequence[str]]) -> list[str]:
    """Base columns, then per attribute its label and one `attribute.class` probability each."""
    out = list(BASE_COLUMNS)
    for name, classes in labels.items():
        out.append(name)
        out.extend(f"{name}.{c}" for c in classes)
    return out


def row_record(row: Row, labels: Mapping[str, Sequence[str]]) -> dict:
    """A row as a flat dict over `columns(labels)`; missing values are None."""
    record: dict = dict.fromkeys(columns(labels))
    record.update(source=row.source, frame=row.frame, timestamp=row.timestamp, status=row.status,
                  message=row.message, detector=row.detector)
    face = row.face
    if face is None:
        return record
    b = face.box
    record.update(
        face=row.face_index, track_id=face.track_id, x1=round(b.x1, 2), y1=round(b.y1, 2),
        x2=round(b.x2, 2), y2=round(b.y2, 2), score=round(face.score, 5),
        landmarks=[[round(x, 2), round(y, 2)] for x, y in face.landmarks] or None,
    )
    for name, pred in face.attributes.items():
        record[name] = pred.label
        for cls, p in pred.probabilities.items():
            record[f"{name}.{cls}"] = round(p, 6)
    return record


def to_dataframe(rows: Iterable[Row], labels: Mapping[str, Sequence[str]]):
    """Rows as a pandas DataFrame over `columns(labels)`, the columns of `mien analyze`'s CSV."""
    pandas = require("pandas", "pandas")
    return pandas.DataFrame([row_record(r, labels) for r in rows], columns=columns(labels))


def faces_dataframe(faces: Sequence[Face], labels: Mapping[str, Sequence[str]],
                    source: str = "<image>", detector: str | None = None):
    """One picture's faces (`Pipeline.analyze`) as `to_dataframe` gives rows, one per face."""
    return to_dataframe((Row(source, 0, None, "ok", i, face, detector=detector)
                         for i, face in enumerate(faces)), labels)


class RowWriter:
    """Writes rows to a path (or a text stream, for jsonl and csv) in one of FORMATS."""

    def __init__(self, target: str | os.PathLike | io.TextIOBase, fmt: Format,
                 labels: Mapping[str, Sequence[str]]):
        if fmt not in FORMATS:
            raise MienError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        self.format = fmt
        self.labels = {k: tuple(v) for k, v in labels.items()}
        self.columns = columns(self.labels)
        self.rows_written = 0
        self._own = not hasattr(target, "write")
        if fmt == "parquet":
            if not self._own:
                raise MienError("parquet cannot stream to standard output; pass --out DIR")
            self._pa = require("pyarrow", "parquet")
            self._pq = require("pyarrow.parquet", "parquet")
            self._buffer: list[dict] = []
            self._parquet = self._pq.ParquetWriter(str(target), self._schema())
            return
        self._stream = open(target, "w", newline="", encoding="utf-8") if self._own else target
        if fmt == "csv":
            self._csv = csv.DictWriter(self._stream, fieldnames=self.columns)
            self._csv.writeheader()

    def _schema(self):
        pa = self._pa
        types = {"source": pa.string(), "frame": pa.int64(), "timestamp": pa.float64(),
                 "status": pa.string(), "message": pa.string(), "detector": pa.string(),
                 "face": pa.int64(),
                 "track_id": pa.int64(), "landmarks": pa.list_(pa.list_(pa.float64()))}
        fields = []
        for c in self.columns:
            if c in types:
                fields.append(pa.field(c, types[c]))
            elif c in self.labels:
                fields.append(pa.field(c, pa.string()))
            else:
                fields.append(pa.field(c, pa.float64()))
        return pa.schema(fields)

    def write(self, row: Row) -> None:
        record = row_record(row, self.labels)
        self.rows_written += 1
        if self.format == "jsonl":
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.format == "csv":
            if record["landmarks"] is not None:
                record["landmarks"] = json.dumps(record["landmarks"])
            self._csv.writerow(record)
        else:
            self._buffer.append(record)
            if len(self._buffer) >= 1024:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        if self._buffer:
            table = self._pa.Table.from_pylist(self._buffer, schema=self._parquet.schema)
            self._parquet.write_table(table)
            self._buffer = []

    def flush(self) -> None:
        if self.format != "parquet":
            self._stream.flush()

    def close(self) -> None:
        if self.format == "parquet":
            self._flush_parquet()
            self._parquet.close()
        elif self._own:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def output_path(out_dir: str | os.PathLike, fmt: Format) -> Path:
    return Path(out_dir) / f"faces.{fmt}"


def stdout_writer(labels: Mapping[str, Sequence[str]], fmt: Format = "jsonl") -> RowWriter:
    return RowWriter(sys.stdout, fmt, labels)


class SourceNames:
    """A file stem per source, unique among the sources of one output folder: `photo`, then
    `photo_1` for another folder's photo.jpg, `stdin` for "-", `camera_0` for a camera."""

    def __init__(self):
        self._stems: dict[str, str] = {}

    def __call__(self, source: str) -> str:
        if source not in self._stems:
            stem = "stdin" if source == "-" else Path(source.replace(":", "_")).stem
            name, n = stem, 1
            while name in self._stems.values():
                name, n = f"{stem}_{n}", n + 1
            self._stems[source] = name
        return self._stems[source]
