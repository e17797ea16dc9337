"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import MetricsDep, PoolDep, StoreDep, require_api_key
from service.errors import ApiError

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the models)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(pool: PoolDep) -> dict[str, Any]:
    """200 once every worker has loaded its models and analysed the warm-up clip; 503 until then, or with
    the reason loading failed."""
    if pool.load_error is not None:
        raise ApiError(503, "model_unavailable", f"models failed to load: {pool.load_error}")
    if not pool.ready:
        raise ApiError(503, "not_ready", "models are loading and warming up", {"Retry-After": "5"})
    return {"status": "ready", "queue_depth": pool.depth(), "busy_workers": pool.busy()}


@router.get("/metrics", dependencies=[Depends(require_api_key)])
def metrics(metrics: MetricsDep, store: StoreDep, pool: PoolDep) -> Response:
    rendered = metrics.render(store.counts(), pool.depth(), pool.busy())
    return Response(rendered, media_type=CONTENT_TYPE_LATEST)
