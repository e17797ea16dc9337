"""Batch inputs: folders, files, URLs and manifests, expanded into work items in a stable order.

Every input becomes exactly one `BatchInput`, hence one output row: a folder yields its media files
(recursively, sorted, hidden files skipped), a manifest (.csv / .jsonl with a `path` or `url` column)
yields one entry per row, and anything that cannot be analysed (a missing path, a manifest row without a
path) becomes an entry that already carries its error, so it is reported rather than silently dropped.

`input` is an entry's identity across runs (absolute path or URL); `item.key` adds what changes when
the file changes (size and mtime), so a resumed batch redoes a file that was replaced since.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from core.errors import ErrorCode, MediaError
from pipeline.executor import WorkItem

log = logging.getLogger(__name__)

# What a folder walk picks up unless --glob says otherwise. GIF is left out: most are stills or UI
# animations, not videos (`--glob '*.gif'` takes them).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv",
     ".3gp", ".wmv", ".ogv"}
)  # fmt: skip
AUDIO_EXTENSIONS = frozenset([".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus"])
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
MANIFEST_EXTENSIONS = (".csv", ".jsonl", ".ndjson")
MANIFEST_COLUMNS = ("path", "url")  # the first non-empty one of these names a row's source
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")  # any scheme: the analyzer refuses what it cannot fetch


class BatchUsageError(Exception):
    """An INPUT argument the batch cannot use at all (not one bad video): exit status 2."""


@dataclass(frozen=True)
class BatchInput:
    """One output row to be: what to analyse, or the error it already has."""

    item: WorkItem  # item.source goes to the analyzer; item.key marks it done in the journal
    input: str  # identity across runs: absolute path, URL, or "<manifest>:<line>" for a bad row
    error: MediaError | None = None  # known without analysing: missing file, unusable manifest row


def discover(inputs: Sequence[str], pattern: str | None = None) -> list[BatchInput]:
    """Expand INPUT arguments into entries, first occurrence first, each identity once.

    `pattern` (a glob such as `*.mp4` or `clips/**/*.mov`) replaces the extension filter in folders.
    Raises BatchUsageError for a manifest without a path or url column.
    """
    found: dict[str, BatchInput] = {}
    for raw in inputs:
        for entry in _expand(raw, pattern):
            found.setdefault(entry.input, entry)  # a file named twice (folder + manifest) is one row
    return list(found.values())


def _expand(raw: str, pattern: str | None) -> Iterator[BatchInput]:
    if _URL.match(raw):
        yield _url_input(raw)
        return
    path = Path(raw).expanduser().resolve()
    if path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
        yield from _read_manifest(path, pattern)
    else:
        yield from _expand_path(path, pattern)


def _expand_path(path: Path, pattern: str | None) -> Iterator[BatchInput]:
    """A folder's media files, or the file itself, or a not_found entry."""
    if path.is_dir():
        count = 0
        for file in _walk(path, pattern):
            count += 1
            yield _file_input(file)
        if count == 0:
            log.warning("no media files in %s%s", path, f" matching {pattern!r}" if pattern else "")
    elif path.exists():
        yield _file_input(path)
    else:
        error = MediaError(ErrorCode.NOT_FOUND, f"no such file or folder: {path}")
        yield BatchInput(WorkItem(str(path), f"{path}|missing"), str(path), error)


def _walk(root: Path, pattern: str | None) -> Iterator[Path]:
    """Files under `root` in sorted order, skipping hidden ones (macOS `._clip.mp4` is not a video)."""

    def report(exc: OSError) -> None:
        log.warning("cannot list %s: %s", exc.filename, exc.strerror)

    for folder, dirs, files in os.walk(root, onerror=report):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder, name)
            if pattern is None:
                if path.suffix.lower() in MEDIA_EXTENSIONS:
                    yield path
            elif fnmatch(name, pattern) or fnmatch(path.relative_to(root).as_posix(), pattern):
                yield path


def _file_input(path: Path) -> BatchInput:
    try:
        stat = path.stat()
    except OSError as exc:
        error = MediaError(ErrorCode.INVALID_SOURCE, f"cannot read {path}: {exc.strerror}")
        return BatchInput(WorkItem(str(path), f"{path}|unreadable"), str(path), error)
    # size + mtime (ns) rather than a content hash: hashing a large folder would cost a full read.
    return BatchInput(WorkItem(str(path), f"{path}|{stat.st_size}|{stat.st_mtime_ns}"), str(path))


def _url_input(url: str) -> BatchInput:
    return BatchInput(WorkItem(url, url), url)


def _read_manifest(manifest: Path, pattern: str | None) -> Iterator[BatchInput]:
    """One entry per manifest row; relative paths are relative to the manifest's folder."""
    rows = _csv_rows(manifest) if manifest.suffix.lower() == ".csv" else _jsonl_rows(manifest)
    for line, value in rows:
        if isinstance(value, MediaError):
            yield _bad_row(manifest, line, value)
        elif _URL.match(value):
            yield _url_input(value)
        else:
            yield from _expand_path((manifest.parent / Path(value).expanduser()).resolve(), pattern)


def _bad_row(manifest: Path, line: int, error: MediaError) -> BatchInput:
    identity = f"{manifest}:{line}"
    return BatchInput(WorkItem(identity, identity), identity, error)


ManifestRow = tuple[int, str | MediaError]  # (line number, source or why the row is unusable)


def _csv_rows(manifest: Path) -> Iterator[ManifestRow]:
    with manifest.open(newline="", encoding="utf-8-sig") as file:  # utf-8-sig: spreadsheets add a BOM
        reader = csv.DictReader(file)
        header = {name.strip().lower(): name for name in reader.fieldnames or () if name}
        columns = [header[name] for name in MANIFEST_COLUMNS if name in header]
        if not columns:
            raise BatchUsageError(
                f"{manifest}: no 'path' or 'url' column (header: {', '.join(header.values()) or 'empty'})"
            )
        for row in reader:
            values = [(row.get(column) or "").strip() for column in columns]
            value = next((v for v in values if v), None)
            if value is None:
                if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    yield reader.line_num, _row_error("row has an empty path and url")
                continue  # a blank line is not a row
            yield reader.line_num, value


def _jsonl_rows(manifest: Path) -> Iterator[ManifestRow]:
    with manifest.open(encoding="utf-8-sig") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield line_number, _row_error(f"not JSON: {exc}")
                continue
            values = [row.get(name) for name in MANIFEST_COLUMNS] if isinstance(row, dict) else []
            value = next((v.strip() for v in values if isinstance(v, str) and v.strip()), None)
            if value is None:
                yield line_number, _row_error('not an object with a "path" or "url" string')
            else:
                yield line_number, value


def _row_error(why: str) -> MediaError:
    return MediaError(ErrorCode.INVALID_SOURCE, f"manifest row: {why}")
