"""`create_app(settings, analyzer_factory)`: the FastAPI app. Models load in the lifespan, never at import.

Tests pass a fake analyzer factory where the point is the HTTP layer, and the real one end to end.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline

from service import routes_analyze, routes_jobs, routes_ops, routes_ui
from service.errors import ApiError, error_response, install_error_handlers
from service.inputs import remove_orphan_uploads
from service.jobs import JobStore
from service.limits import BodyLimit
from service.metrics import Metrics
from service.origin import allowed_hosts, check_request
from service.settings import Settings, get_settings
from service.webhooks import WebhookSender
from service.worker import AnalyzerFactory, WorkerPool, default_analyzer_factory

log = logging.getLogger("reelsense.service")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_FORM_OVERHEAD = 1024 * 1024  # multipart boundaries and small fields on top of the file itself


def create_app(settings: Settings | None = None, analyzer_factory: AnalyzerFactory | None = None) -> FastAPI:
    settings = settings or get_settings()
    factory = analyzer_factory or default_analyzer_factory
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore(settings.jobs_db)
        interrupted = store.mark_interrupted()
        if interrupted:
            log.warning("%d unfinished job(s) from a previous run marked failed (interrupted)", interrupted)
        own_dir = settings.upload_dir is None
        upload_dir = Path(tempfile.mkdtemp(prefix="reelsense-uploads-")) if own_dir else settings.upload_dir
        assert upload_dir is not None
        upload_dir.mkdir(parents=True, exist_ok=True)
        orphans = remove_orphan_uploads(upload_dir)
        if orphans:
            log.warning("%d upload(s) of interrupted jobs removed from %s", orphans, upload_dir)
        webhooks = WebhookSender(
            settings.webhook_fetch_config(), retries=settings.webhook_retries,
            backoff_s=settings.webhook_backoff_s, timeout_s=settings.webhook_timeout_s,
            max_workers=settings.webhook_workers,
        )  # fmt: skip
        pool = WorkerPool(settings, factory, store, metrics, webhooks)
        app.state.store, app.state.pool, app.state.upload_dir = store, pool, upload_dir
        pool.start()  # models load in the worker threads; /readyz turns 200 when they are done
        try:
            yield
        finally:
            pool.stop()
            webhooks.close()
            store.close()
            if own_dir:
                shutil.rmtree(upload_dir, ignore_errors=True)

    # /docs with Swagger UI served from the fastapi-offline wheel: FastAPI's default loads it from a CDN,
    # which a self-hosted service behind a firewall cannot reach (a blank page). No /redoc: ReDoc still
    # fetches its logo from its own CDN.
    app = FastAPIOffline(title="reelsense", version="0.1.0", lifespan=lifespan, redoc_url=None)
    app.state.metrics = metrics
    app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    for module in (routes_ops, routes_analyze, routes_jobs, routes_ui):
        app.include_router(module.router)
    # Inside the request-context middleware: its receive must raise straight into the handler, not
    # through BaseHTTPMiddleware's task group (which would wrap the 413 in an ExceptionGroup).
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    hosts = allowed_hosts(settings)

    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        return await _request_context(request, call_next, hosts)

    app.middleware("http")(request_context)
    return app


async def _request_context(
    request: Request, call_next: Callable[[Request], Awaitable[Response]], hosts: frozenset[str] | None
) -> Response:
    """Request id in and out, Host and origin checks, request metrics, and a last line of defence
    against tracebacks."""
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request.state.request_id = request_id
    started = time.perf_counter()
    try:
        check_request(request, hosts)
        response = await call_next(request)
    except ApiError as exc:  # refused before any route runs
        log.info("request %s: %s %s", request_id, exc.status, exc.code)
        response = error_response(exc.status, exc.code, exc.message)
    except Exception:
        log.exception("request %s: unhandled error on %s %s", request_id, request.method, request.url.path)
        response = error_response(500, "internal_error", f"internal error (request id {request_id})")
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    metrics: Metrics = request.app.state.metrics
    metrics.observe_request(path, request.method, response.status_code, time.perf_counter() - started)
    response.headers["X-Request-ID"] = request_id
    return response
