"""Typed dependencies shared by the routers."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, cast

from fastapi import Depends, Header, Request

from service.errors import ApiError
from service.jobs import JobStore
from service.metrics import Metrics
from service.settings import Settings, get_settings
from service.worker import WorkerPool

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_pool(request: Request) -> WorkerPool:
    return cast(WorkerPool, request.app.state.pool)


def get_store(request: Request) -> JobStore:
    return cast(JobStore, request.app.state.store)


def get_metrics(request: Request) -> Metrics:
    return cast(Metrics, request.app.state.metrics)


def get_upload_dir(request: Request) -> Path:
    return cast(Path, request.app.state.upload_dir)


PoolDep = Annotated[WorkerPool, Depends(get_pool)]
StoreDep = Annotated[JobStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
UploadDirDep = Annotated[Path, Depends(get_upload_dir)]


@dataclass(frozen=True)
class Caller:
    """Who is asking: the key id that owns their jobs ("" without keys), and whether they see all jobs."""

    owner: str
    admin: bool

    @property
    def scope(self) -> str | None:
        """The owner whose jobs this caller may see; None: every job (an admin)."""
        return None if self.admin else self.owner


def key_id(key: str) -> str:
    """What the job store records for a key: a hash, so the database never holds a key."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """No keys configured: open (one anonymous owner). Else X-API-Key or `Authorization: Bearer` must
    match one of API_KEYS (owns its jobs) or ADMIN_API_KEYS (sees every job)."""
    keys = settings.api_key_list
    admins = settings.admin_api_key_list
    if not keys and not admins:
        return Caller(owner="", admin=False)
    given = x_api_key or None  # an empty X-API-Key is no key: it must not hide a Bearer token
    if given is None and authorization is not None and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    if not given:
        raise ApiError(
            401, "unauthorized", "an API key is required (X-API-Key or Authorization: Bearer)",
            {"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    # Compare against every key (no early exit) in constant time per key.
    matches = [hmac.compare_digest(given.encode(), key.encode()) for key in keys]
    admin_matches = [hmac.compare_digest(given.encode(), key.encode()) for key in admins]
    if not any(matches) and not any(admin_matches):
        raise ApiError(403, "forbidden", "this API key is not valid")
    return Caller(owner=key_id(given), admin=any(admin_matches))


CallerDep = Annotated[Caller, Depends(require_api_key)]
