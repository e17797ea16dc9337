"""The job store: SQLite (stdlib, WAL), so a restart loses no finished result.

Jobs queued or running when a process stops cannot resume (an upload's temp file is gone, the in-flight
analysis is lost), so at startup they are marked `failed` with error code `interrupted`: the client sees
an honest final state and can resubmit. One service process owns a database file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = frozenset({"succeeded", "failed", "cancelled"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    progress REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    source TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    webhook_url TEXT,
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""
# Jobs belong to the API key that made them: `owner` is a key id (service/deps.py key_id: a hash, never
# the key), "" when the service runs without keys. Idempotency keys are stored as "owner:key", so the
# same key from two owners names two jobs (the column's UNIQUE stays what it was).
_MIGRATIONS = ("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",)


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    stage: str
    progress: float
    created_at: float
    updated_at: float
    source: str
    idempotency_key: str | None
    webhook_url: str | None
    result: dict[str, Any] | None
    error: dict[str, str] | None

    def to_dict(self) -> dict[str, Any]:
        """The API's job object: the result once succeeded, the error once failed or cancelled."""
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 3),
            "source": self.source,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if self.status == "succeeded":
            data["result"] = self.result
        if self.error is not None:
            data["error"] = self.error
        return data


class JobStore:
    """Thread-safe: one connection behind a lock (the worker threads and the event loop share it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "owner" not in columns:  # a database from before jobs had owners
                for statement in _MIGRATIONS:
                    self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def mark_interrupted(self) -> int:
        """Fail every job a previous process left unfinished; returns how many."""
        error = json.dumps({"code": "interrupted", "message": "the service stopped before this job "
                            "finished; submit it again"})  # fmt: skip
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status='failed', stage='interrupted', error=?, updated_at=? "
                "WHERE status IN ('queued', 'running')",
                (error, time.time()),
            )
        return cursor.rowcount

    def create(
        self, source: str, idempotency_key: str | None, webhook_url: str | None, owner: str = ""
    ) -> tuple[Job, bool]:
        """A new queued job of `owner`, or the owner's existing one with this idempotency key;
        (job, created)."""
        now = time.time()
        job_id = uuid.uuid4().hex
        stored_key = f"{owner}:{idempotency_key}" if idempotency_key is not None else None
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO jobs (id, status, stage, progress, created_at, updated_at, source, "
                    "idempotency_key, webhook_url, owner) "
                    "VALUES (?, 'queued', 'queued', 0, ?, ?, ?, ?, ?, ?)",
                    (job_id, now, now, source, stored_key, webhook_url, owner),
                )
            except sqlite3.IntegrityError:  # the key exists: the same request again
                row = self._db.execute(
                    "SELECT * FROM jobs WHERE idempotency_key = ?", (stored_key,)
                ).fetchone()
                return _job(row), False
        job = self.get(job_id)
        assert job is not None
        return job, True

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The job; with `owner`, only if it is that owner's (None: any owner, for admins and workers)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            return None
        return _job(row)

    def recent(self, limit: int, owner: str | None = None) -> list[Job]:
        """The newest jobs (of `owner` only, unless None)."""
        where, args = ("WHERE owner = ? ", (owner,)) if owner is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs {where}ORDER BY created_at DESC, rowid DESC LIMIT ?", (*args, limit)
            ).fetchall()
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | {row[0]: int(row[1]) for row in rows}

    def start(self, job_id: str, stage: str) -> bool:
        """queued -> running; False when the job was cancelled meanwhile (then it must not run)."""
        return self._update(job_id, ("queued",), status="running", stage=stage, progress=0.0)

    def progress(self, job_id: str, stage: str, progress: float) -> None:
        """A running job's current stage and fraction done (the analysis reports them as it goes)."""
        self._update(job_id, ("running",), stage=stage, progress=progress)

    def finish(self, job_id: str, *, result: dict[str, Any] | None, error: dict[str, str] | None) -> bool:
        """running -> succeeded/failed; False when cancelled meanwhile (the result is discarded)."""
        status = "failed" if error is not None else "succeeded"
        return self._update(
            job_id, ("running",), status=status, stage="done", progress=1.0,
            result=json.dumps(result) if result is not None else None,
            error=json.dumps(error) if error is not None else None,
        )  # fmt: skip

    def cancel(self, job_id: str) -> bool:
        """queued/running -> cancelled; False when it had already finished."""
        error = json.dumps({"code": "cancelled", "message": "cancelled by the client"})
        return self._update(job_id, ("queued", "running"), status="cancelled", stage="cancelled", error=error)

    def prune(self, older_than_s: float) -> int:
        """Delete finished jobs last updated more than `older_than_s` ago; returns how many."""
        cutoff = time.time() - older_than_s
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND updated_at < ?",
                (cutoff,),
            )
        return cursor.rowcount

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def _update(self, job_id: str, from_statuses: tuple[str, ...], **fields: Any) -> bool:
        # Conditional on the current status, so a late worker cannot overwrite a cancel or a restart.
        names = ", ".join(f"{name} = ?" for name in fields)
        marks = ", ".join("?" for _ in from_statuses)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE jobs SET {names}, updated_at = ? WHERE id = ? AND status IN ({marks})",
                (*fields.values(), time.time(), job_id, *from_statuses),
            )
        return cursor.rowcount == 1


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        status=row["status"],
        stage=row["stage"],
        progress=row["progress"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        source=row["source"],
        idempotency_key=row["idempotency_key"].split(":", 1)[-1] if row["idempotency_key"] else None,
        webhook_url=row["webhook_url"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds")
