"""Asynchronous jobs: create (202), poll, list, cancel. The store is SQLite; see service/jobs.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from service.deps import CallerDep, PoolDep, SettingsDep, StoreDep, UploadDirDep, require_api_key
from service.errors import ApiError
from service.inputs import read_submission
from service.jobs import FINAL
from service.schemas import ERROR_RESPONSES, JobList

router = APIRouter(prefix="/v1/jobs", dependencies=[Depends(require_api_key)])


@router.post("", status_code=202, responses=ERROR_RESPONSES)
async def create_job(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    store: StoreDep,
    upload_dir: UploadDirDep,
    caller: CallerDep,
) -> JSONResponse:
    """Same inputs as /v1/analyze plus `idempotency_key` and `webhook_url`; 202 `{id, status}`.

    The same idempotency key (from the same API key) returns the job it first created (200), whatever
    the new request holds. The job belongs to the API key that made it.
    """
    submission = await read_submission(request, settings, upload_dir)
    task = submission.task
    job, created = store.create(
        task.shown_source, submission.idempotency_key, submission.webhook_url, owner=caller.owner
    )
    if not created:
        task.discard_upload()
        return JSONResponse({"id": job.id, "status": job.status}, status_code=200)
    task.job_id = job.id
    try:
        pool.submit(task)
    except ApiError:
        # Never queued: remove the record so the same idempotency key can be retried after the 429.
        store.delete(job.id)
        task.discard_upload()
        raise
    return JSONResponse({"id": job.id, "status": job.status}, status_code=202)


@router.get("", response_model=JobList)
def list_jobs(
    store: StoreDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """The caller's most recent jobs first (an admin key: everyone's)."""
    return {"jobs": [job.to_dict() for job in store.recent(limit, owner=caller.scope)]}


@router.get("/{job_id}", responses=ERROR_RESPONSES)
def get_job(job_id: str, store: StoreDep, caller: CallerDep) -> dict[str, Any]:
    job = store.get(job_id, owner=caller.scope)  # another key's job: 404, as if it did not exist
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return job.to_dict()


@router.delete("/{job_id}", responses=ERROR_RESPONSES)
def cancel_job(job_id: str, store: StoreDep, pool: PoolDep, caller: CallerDep) -> dict[str, Any]:
    """queued -> cancelled (never runs); running -> cancelled (its result is discarded); final: unchanged."""
    job = store.get(job_id, owner=caller.scope)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    if job.status not in FINAL:
        store.cancel(job_id)
        pool.cancel(job_id)  # a running analysis stops at its next check
        job = store.get(job_id) or job
    return job.to_dict()
