"""POST /v1/analyze: one short video, answered synchronously within the configured time limit."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from core.errors import ErrorCode, MediaError
from service.deps import PoolDep, SettingsDep, UploadDirDep, require_api_key
from service.errors import ApiError
from service.inputs import read_submission
from service.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@router.post("/analyze", responses=ERROR_RESPONSES)
async def analyze(
    request: Request, settings: SettingsDep, pool: PoolDep, upload_dir: UploadDirDep
) -> JSONResponse:
    """JSON `{"url", "labels"?, "head"?}` or a multipart `file` (+ `labels`, comma-separated, `head`).

    Returns the Prediction. A failed video is an error with the pipeline's code (e.g. 415 invalid_media).
    """
    task = (await read_submission(request, settings, upload_dir)).task
    try:
        pool.submit(task)  # the same bounded capacity as jobs: 429 when full
    except ApiError:
        task.discard_upload()
        raise
    try:
        # wait_for cancels the wrapped future on timeout: a task still queued is then skipped.
        prediction = await asyncio.wait_for(asyncio.wrap_future(task.future), settings.sync_timeout_s)
    except asyncio.TimeoutError:
        task.stop(MediaError(ErrorCode.CANCELLED, "the caller stopped waiting (sync timeout)"))
        raise ApiError(
            504, "timeout",
            f"analysis did not finish within {settings.sync_timeout_s:g} s; "
            "for longer videos use POST /v1/jobs",
        ) from None  # fmt: skip
    if prediction.error is not None:
        raise ApiError.from_media(prediction.error)
    return JSONResponse(prediction.to_dict())
