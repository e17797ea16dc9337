"""One error shape for every failure: `{"error": {"code", "message"}}` with a fitting HTTP status.

Pipeline codes (core.errors.ErrorCode) keep their values; the service adds its own few (timeout,
queue_full, unauthorized, ...). A traceback never reaches the client: unexpected exceptions become
`internal_error` and are logged with the request id.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from core.errors import ErrorCode, MediaError

log = logging.getLogger("reelsense.service")

# url_forbidden is a 400, not a 403: 401/403 are kept for the API key, so a client can tell "your key is
# wrong" from "that URL is not allowed". Origin failures are 502 (we are a gateway to the URL).
_STATUS_BY_ERROR_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_SOURCE: 400,
    ErrorCode.INVALID_LABELS: 400,
    ErrorCode.UNSUPPORTED_SCHEME: 400,
    ErrorCode.NOT_FOUND: 400,
    ErrorCode.EMPTY_FILE: 400,
    ErrorCode.URL_FORBIDDEN: 400,
    ErrorCode.FETCH_TIMEOUT: 504,
    ErrorCode.FETCH_TOO_LARGE: 413,
    ErrorCode.FETCH_HTTP_ERROR: 502,
    ErrorCode.FETCH_FAILED: 502,
    ErrorCode.TOO_MANY_REDIRECTS: 502,
    ErrorCode.INVALID_MEDIA: 415,
    ErrorCode.NOT_A_VIDEO: 415,
    ErrorCode.NO_MEDIA_STREAMS: 415,
    ErrorCode.DECODE_FAILED: 422,
    ErrorCode.MEDIA_TOO_LONG: 413,
    ErrorCode.FRAME_TOO_LARGE: 413,
    ErrorCode.MODEL_UNAVAILABLE: 503,
    ErrorCode.MODEL_CHECKSUM_MISMATCH: 503,
    ErrorCode.INVALID_MODEL_SPEC: 500,
    ErrorCode.TRANSCRIBE_FAILED: 500,
    ErrorCode.ANALYSIS_TIMEOUT: 504,
    ErrorCode.CANCELLED: 409,
    ErrorCode.INTERNAL_ERROR: 500,
}
STATUS_BY_CODE = {code.value: status for code, status in _STATUS_BY_ERROR_CODE.items()}
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "queue_full",
    503: "not_ready",
    504: "timeout",
}


class ApiError(Exception):
    """Raised by handlers and dependencies; rendered as the one error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    @classmethod
    def from_media(cls, error: MediaError) -> ApiError:
        return cls(STATUS_BY_CODE.get(error.code.value, 400), error.code.value, error.message)


MAX_MESSAGE_CHARS = 500  # messages quote what the client sent: a 1 MB label is not echoed back whole


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    log.info("request %s: %s %s (%s)", _request_id(request), exc.status, exc.code, exc.message[:500])
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(exc.code).inc()
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _media_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MediaError)
    return await _api_error(request, ApiError.from_media(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return await _api_error(request, ApiError(exc.status_code, code, str(exc.detail), headers))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return await _api_error(request, ApiError(422, "validation_error", "; ".join(parts) or "invalid request"))


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    """The client hung up mid-request (an upload cut off): nobody to answer, nothing went wrong here.
    Logged in one line and counted as 499 (nginx's "client closed request"), never as a 500."""
    log.info("request %s: the client disconnected before the request was read", _request_id(request))
    return error_response(499, "client_disconnected", "the client disconnected")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(MediaError, _media_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
