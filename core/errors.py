"""The one error type every stage raises: a stable machine code plus a human message.

Callers (CLI, batch, service) turn it into `{"code": ..., "message": ...}`; anything that is not a
`MediaError` reaching them is a bug and is reported as `internal_error`.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Stable error codes. Values are part of the public API: never rename one."""

    # The source itself
    INVALID_SOURCE = "invalid_source"  # not a path or URL we understand
    INVALID_LABELS = "invalid_labels"  # an empty, duplicated or oversized label set
    UNSUPPORTED_SCHEME = "unsupported_scheme"  # ftp://, data:, javascript:, ...
    NOT_FOUND = "not_found"  # local file missing
    EMPTY_FILE = "empty_file"  # zero bytes
    # Fetching a URL
    URL_FORBIDDEN = "url_forbidden"  # resolves to an internal address
    FETCH_TIMEOUT = "fetch_timeout"
    FETCH_TOO_LARGE = "fetch_too_large"
    FETCH_HTTP_ERROR = "fetch_http_error"  # 4xx/5xx from the origin
    FETCH_FAILED = "fetch_failed"  # DNS, connection refused, TLS, ...
    TOO_MANY_REDIRECTS = "too_many_redirects"
    # The media
    INVALID_MEDIA = "invalid_media"  # not a container FFmpeg can read (random bytes, no moov atom)
    NOT_A_VIDEO = "not_a_video"  # a still image
    NO_MEDIA_STREAMS = "no_media_streams"  # a container with neither video nor audio
    DECODE_FAILED = "decode_failed"  # the container opened but no frame/sample could be decoded
    MEDIA_TOO_LONG = "media_too_long"  # above the configured duration limit
    FRAME_TOO_LARGE = "frame_too_large"  # video frames above the configured pixel count (a memory bomb)
    # Models
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_CHECKSUM_MISMATCH = "model_checksum_mismatch"
    INVALID_MODEL_SPEC = "invalid_model_spec"
    TRANSCRIBE_FAILED = "transcribe_failed"
    # Stopped from outside
    ANALYSIS_TIMEOUT = "analysis_timeout"  # past the per-analysis deadline
    CANCELLED = "cancelled"  # the client cancelled the job or gave up waiting
    # Anything else: a bug, reported without a traceback
    INTERNAL_ERROR = "internal_error"


class MediaError(Exception):
    """A failure of one input, with a stable `code` and a message a person can act on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}

    def __reduce__(self) -> tuple[type[MediaError], tuple[ErrorCode, str]]:
        # Pickled across processes (Ray workers): rebuild from both fields, not Exception.args.
        return (MediaError, (self.code, self.message))

    def __repr__(self) -> str:
        return f"MediaError({self.code.value!r}, {self.message!r})"
