"""Batch output: the crash-safe journal of finished rows, and the final CSV / Parquet table.

The journal is JSON Lines, one row per finished input: `Prediction.to_dict()` plus `input` and
`input_key`. Each row is appended with one write, then flushed and fsync'ed, so a crash (SIGKILL, power
loss) loses at most the row being written, and that one only as a torn last line without its newline,
which the next run cuts off. For `--format jsonl` the journal is the output; for csv and parquet it is a
sidecar (`<out>.journal.jsonl`, kept for the next resume) and the table is rewritten from it atomically
(temporary file in the same folder, then rename), so a reader never sees a half-written table.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

from scripts.batch_inputs import BatchUsageError

log = logging.getLogger(__name__)

Format = Literal["jsonl", "parquet", "csv"]
Row = dict[str, Any]
PARQUET_BATCH_ROWS = 1024  # rows per write: memory stays bounded however long the journal

# Flat columns for CSV and Parquet, in order: (name, type). Nested values become JSON strings.
MEDIA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("duration_s", "float"), ("width", "int"), ("height", "int"), ("fps", "float"), ("vfr", "bool"),
    ("rotation", "int"), ("has_video", "bool"), ("has_audio", "bool"), ("has_speech", "bool"),
    ("container", "str"), ("video_codec", "str"), ("audio_codec", "str"), ("audio_channels", "int"),
    ("size_bytes", "int"),
)  # fmt: skip
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "str"), ("source", "str"), ("input", "str"), ("input_key", "str"), ("status", "str"),
    ("error_code", "str"), ("error_message", "str"), *MEDIA_COLUMNS,
    ("category", "str"), ("category_confidence", "float"), ("sentiment", "str"),
    ("sentiment_confidence", "float"), ("language", "str"), ("transcript", "str"),
    ("category_scores", "json"), ("sentiment_scores", "json"), ("sentiment_by_modality", "json"),
    ("transcript_segments", "json"), ("segments", "json"), ("evidence", "json"), ("model", "json"),
    ("timings_ms", "json"),
)  # fmt: skip


class JournalBusyError(BatchUsageError):
    """Another batch holds this journal: two writers would duplicate rows."""


class RowInfo(NamedTuple):
    """What planning and the summary need of a journal row; the rows themselves stay on disk."""

    input: str
    input_key: str
    status: str
    category: str | None


class Journal:
    """The append-only JSON Lines file of finished rows. Use as a context manager (it holds a lock).

    Memory stays small for any batch size: `infos` holds a few strings per row, `rows()` streams.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.infos: list[RowInfo] = []
        self._lock: IO[bytes] | None = None
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Journal:
        self._lock = _acquire_lock(self.path.with_name(self.path.name + ".lock"))
        if self.path.exists():
            _repair_torn_tail(self.path)
            self.infos = [_info(row) for row in self.rows()]
        self._open_for_append()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
        if self._lock is not None:
            Path(self._lock.name).unlink(missing_ok=True)
            self._lock.close()  # closing releases the flock

    def rows(self) -> Iterator[Row]:
        """The journal's rows in order, read from disk (lines that are not rows are skipped)."""
        with self.path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                row = _decode(line)
                if row is not None:
                    yield row
                elif line.strip():  # not ours to delete: someone edited the file; it is not a row
                    log.warning("%s line %d is not a batch row: ignored", self.path, number)

    def append(self, row: Row) -> None:
        """Write one row durably: it survives a crash right after this returns."""
        assert self._file is not None, "use the journal as a context manager"
        self._file.write(_encode(row))  # one write of a whole line: a crash tears at most this one
        self._file.flush()
        os.fsync(self._file.fileno())
        self.infos.append(_info(row))

    def rewrite(self, keep: Sequence[bool]) -> None:
        """Atomically drop the rows whose `keep` flag (one per row, in order) is False."""
        assert self._file is not None, "use the journal as a context manager"
        self._file.close()
        kept = (row for row, flag in zip(self.rows(), keep, strict=True) if flag)
        _write_atomically(self.path, lambda file: file.writelines(_encode(row) for row in kept))
        self.infos = [info for info, flag in zip(self.infos, keep, strict=True) if flag]
        self._open_for_append()

    def _open_for_append(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        self._file = self.path.open("ab")
        if not existed:
            _fsync_dir(self.path.parent)  # the new file's name must survive a crash too


def journal_path(out: Path, fmt: Format) -> Path:
    return out if fmt == "jsonl" else out.with_name(out.name + ".journal.jsonl")


def write_table(rows: Iterable[Row], out: Path, fmt: Format) -> None:
    """Write the rows flattened as CSV or Parquet, streaming, atomically (readers see old or new)."""
    flat = (flatten(row) for row in rows)
    if fmt == "csv":
        _write_atomically(out, lambda file: _write_csv(flat, file))
    elif fmt == "parquet":
        _write_atomically(out, lambda file: _write_parquet(flat, file))
    else:
        raise ValueError(f"not a table format: {fmt}")


def flatten(row: Row) -> Row:
    """One journal row as flat columns (see COLUMNS); nested values as JSON strings."""
    media, error = row.get("media") or {}, row.get("error") or {}
    category, sentiment = row.get("category") or {}, row.get("sentiment") or {}
    transcript = row.get("transcript") or {}
    flat: Row = {name: row.get(name) for name in ("id", "source", "input", "input_key", "status")}
    flat |= {"error_code": error.get("code"), "error_message": error.get("message")}
    flat |= {name: media.get(name) for name, _ in MEDIA_COLUMNS}
    flat["has_speech"] = media.get("has_speech", row.get("has_speech"))
    flat |= {
        "category": category.get("label"),
        "category_confidence": category.get("confidence"),
        "sentiment": sentiment.get("label"),
        "sentiment_confidence": sentiment.get("confidence"),
        "language": transcript.get("language"),
        "transcript": transcript.get("text"),
    }
    nested = {
        "category_scores": category.get("scores"),
        "sentiment_scores": sentiment.get("scores"),
        "sentiment_by_modality": sentiment.get("by_modality"),
        "transcript_segments": transcript.get("segments"),
        "segments": row.get("segments"),
        "evidence": row.get("evidence"),
        "model": row.get("model"),
        "timings_ms": row.get("timings_ms"),
    }
    flat |= {name: None if value is None else json.dumps(value) for name, value in nested.items()}
    return flat


def _write_csv(flat: Iterable[Row], file: IO[bytes]) -> None:
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    writer = csv.DictWriter(text, fieldnames=[name for name, _ in COLUMNS])
    writer.writeheader()
    writer.writerows(flat)
    text.flush()
    text.detach()  # leave `file` open: _write_atomically fsyncs and closes it


def _write_parquet(flat: Iterable[Row], file: IO[bytes]) -> None:
    import pyarrow as pa  # lazily: only parquet output needs it
    import pyarrow.parquet as pq

    types = {"str": pa.string(), "json": pa.string(), "float": pa.float64(), "int": pa.int64()}
    types["bool"] = pa.bool_()
    schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])  # typed even when all null
    with pq.ParquetWriter(file, schema) as writer:
        batch: list[Row] = []
        for row in flat:
            batch.append(row)
            if len(batch) == PARQUET_BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))  # also the empty table: the schema


def _info(row: Row) -> RowInfo:
    category = row.get("category")
    label = category.get("label") if isinstance(category, dict) else None
    return RowInfo(str(row.get("input") or row["input_key"]), row["input_key"], str(row.get("status")), label)


def _encode(row: Row) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _repair_torn_tail(path: Path) -> None:
    """Cut off a torn last line (a crash mid-write); a whole row that only lost its newline is kept."""
    with path.open("r+b") as file:
        size = file.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # back to the last newline, a block at a time (the tail is one row at most)
            file.seek(max(0, end - 65536))
            block = file.read(end - max(0, end - 65536))
            newline = block.rfind(b"\n")
            if newline >= 0:
                end = end - len(block) + newline + 1
                break
            end -= len(block)
        if end == size:
            return
        file.seek(end)
        tail = file.read()
        if _decode(tail) is not None:
            file.write(b"\n")
        else:
            log.warning("%s: dropping a torn last line (%d bytes) of a killed run", path, len(tail))
            file.truncate(end)
        file.flush()
        os.fsync(file.fileno())


def _decode(line: bytes) -> Row | None:
    try:
        row = json.loads(line)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    return row if isinstance(row, dict) and isinstance(row.get("input_key"), str) else None


def _acquire_lock(path: Path) -> IO[bytes]:
    """An exclusive flock on `path` (released by the kernel if we are killed, so never stale)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        lock = path.open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise JournalBusyError(f"another reelsense batch is writing {path.with_suffix('')}") from None
        try:
            same = os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return lock
        lock.close()  # the previous holder unlinked it between our open and flock: lock the new file


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
