"""Turn a request (JSON with a URL, or a multipart upload) into a worker Task.

Only http(s) URLs are accepted from clients: the pipeline also reads local paths and file:// URLs, which
a remote client must never reach. Uploads are written to the service's upload dir with a bounded size.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from core.errors import ErrorCode, MediaError
from models.labels import LabelSet, custom_labels
from service.errors import ApiError
from service.schemas import JobRequest
from service.settings import Settings
from service.webhooks import check_webhook_url
from service.worker import Task

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_HEAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CHUNK = 1024 * 1024


@dataclass
class Submission:
    task: Task
    idempotency_key: str | None = None
    webhook_url: str | None = None


async def read_submission(request: Request, settings: Settings, upload_dir: Path) -> Submission:
    """Parse either body form; raises ApiError/MediaError (rendered as the error shape)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return _from_json(await request.body(), settings)
    if content_type == "multipart/form-data":
        return await _from_form(request, settings, upload_dir)
    raise ApiError(415, "unsupported_media_type", "send application/json with a url, or multipart/form-data")


def _from_json(body: bytes, settings: Settings) -> Submission:
    try:
        data = JobRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(
            422, "validation_error", f"{where}: {first['msg']}" if where else first["msg"]
        ) from None
    check_video_url(data.url)
    task = Task(source=data.url, shown_source=data.url, labels=_labels(data.labels))
    task.head = resolve_head(data.head, settings.heads_dir) if data.head else None
    return _with_job_fields(task, data.idempotency_key, data.webhook_url, settings)


async def _from_form(request: Request, settings: Settings, upload_dir: Path) -> Submission:
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "validation_error", "file: a multipart file field named 'file' is required")
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        raw_labels = fields.get("labels")
        # An empty field means "not given" (HTML forms send empty inputs): the default labels.
        names = [n.strip() for n in raw_labels.split(",") if n.strip()] if raw_labels else None
        task = Task(source="", shown_source=f"upload:{_safe_name(upload.filename)}", labels=_labels(names))
        task.head = resolve_head(fields["head"], settings.heads_dir) if fields.get("head") else None
        submission = _with_job_fields(
            task, fields.get("idempotency_key") or None, fields.get("webhook_url") or None, settings
        )
        # Last, so nothing else can fail after the file exists; in a thread: a big copy must not block.
        task.upload = await run_in_threadpool(save_upload, upload, upload_dir, settings.max_upload_bytes)
        task.source = str(task.upload)
    return submission


def _with_job_fields(task: Task, key: str | None, webhook_url: str | None, settings: Settings) -> Submission:
    if webhook_url is not None:
        check_webhook_url(webhook_url, settings.webhook_allow_network_list)
    if key is not None and len(key) > 200:
        raise ApiError(422, "validation_error", "idempotency_key: at most 200 characters")
    return Submission(task, key, webhook_url)


def check_video_url(url: str) -> None:
    match = _SCHEME.match(url)
    if match is None:
        raise MediaError(ErrorCode.INVALID_SOURCE, "url must be an absolute http(s) URL")
    if match.group(1).lower() not in ("http", "https"):
        raise MediaError(ErrorCode.UNSUPPORTED_SCHEME, f"unsupported scheme {match.group(1)!r}: use http(s)")


def resolve_head(name: str, heads_dir: Path | None) -> Path:
    """A head directory by name, inside `heads_dir` only (no separators, no "..", no symlink escape)."""
    if not _HEAD_NAME.fullmatch(name) or ".." in name:
        raise ApiError(400, "invalid_head", "head must be a plain name (letters, digits, '.', '_', '-')")
    if heads_dir is None:
        raise ApiError(404, "head_not_found", "no fine-tuned heads are configured on this service")
    root = heads_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_dir():
        raise ApiError(404, "head_not_found", f"no head named {name!r}")
    return path


_UPLOAD_NAME = re.compile(r"[0-9a-f]{32}(\.[A-Za-z0-9]{1,8})?")  # what save_upload writes (and wrote)


def remove_orphan_uploads(upload_dir: Path) -> int:
    """At start-up no task is alive, so every upload left in the folder belongs to a job the previous
    process left unfinished (now marked interrupted): remove them. Only our own file names are touched."""
    removed = 0
    for path in upload_dir.iterdir():
        if _UPLOAD_NAME.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def save_upload(upload: UploadFile, upload_dir: Path, max_bytes: int) -> Path:
    """Copy the upload into `upload_dir`; refuses (413) past `max_bytes` and empty files (400).

    The client's file name, suffix included, is never used: FFmpeg picks some demuxers by suffix
    (.m3u8 selects the HLS playlist reader), so the stored name says nothing about the content.
    """
    path = upload_dir / f"{uuid.uuid4().hex}.upload"
    written = 0
    try:
        with path.open("wb") as out:
            while chunk := upload.file.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise ApiError(413, "payload_too_large", f"upload larger than {max_bytes} bytes")
                out.write(chunk)
        if written == 0:
            raise MediaError(ErrorCode.EMPTY_FILE, "the uploaded file is empty")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _labels(names: list[str] | None) -> LabelSet | None:
    return custom_labels(names) if names is not None else None  # MediaError(INVALID_LABELS) -> 400


def _safe_name(filename: str | None) -> str:
    name = Path(filename or "file").name
    return re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:100] or "file"
