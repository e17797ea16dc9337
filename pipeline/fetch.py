"""Make a source (local path, file:// or http(s) URL) available as a local file.

Downloads are bounded (connect/read/total time, bytes, redirects, retries) and may only reach public
addresses: every TCP connection goes through `GuardedBackend`, which resolves the host once, refuses it
if any address is internal (netguard), connects to the vetted IP itself and re-checks the peer. Checking
at connect time, not on the URL, is what covers redirects, DNS rebinding and IP spellings like "127.1".
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import ssl
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpcore
import httpx

from core.errors import ErrorCode, MediaError
from pipeline.config import FetchConfig
from pipeline.netguard import is_forbidden_ip, resolve_and_check
from pipeline.types import LocalMedia

_RETRY_STATUSES = frozenset({429, 502, 503, 504})  # transient by definition; other 4xx/5xx are final
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")  # 2+ characters, so "C:\clip.mp4" stays a path
# A suffix only helps people and tools looking at the temp dir: the decoder sniffs the content.
_CONTENT_TYPE_SUFFIX = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/mpeg": ".mpg",
    "video/mp2t": ".ts",
    "video/3gpp": ".3gp",
    "video/x-flv": ".flv",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/webm": ".webm",
    "image/gif": ".gif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}
_KNOWN_SUFFIXES = frozenset(_CONTENT_TYPE_SUFFIX.values()) | {".m4v", ".mpeg", ".ogv", ".oga", ".opus"}


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to vetted, non-internal addresses.

    `inner` does the actual connecting (httpcore.SyncBackend by default; tests put a recorder there).
    It is always handed an IP literal, never a name, so nothing below re-resolves the host.
    """

    def __init__(
        self,
        config: FetchConfig,
        inner: httpcore.NetworkBackend | None = None,
        deadline: float | None = None,
    ) -> None:
        self._config = config
        self._inner = inner if inner is not None else httpcore.SyncBackend()
        self._deadline = deadline  # time.monotonic() after which no read or write may wait

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_and_check(host, port, self._config)
        last_error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:  # like create_connection: the next address when one refuses
            try:
                stream = self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            self._check_peer(host, stream)
            return stream if self._deadline is None else _DeadlineStream(stream, self._deadline)
        assert last_error is not None  # resolve_and_check never returns an empty list
        raise last_error

    def _check_peer(self, host: str, stream: httpcore.NetworkStream) -> None:
        # The address the socket is really connected to: catches anything between us and the kernel
        # (a backend, NAT or resolver) that sent the connection somewhere other than the vetted IP.
        peer = stream.get_extra_info("server_addr")
        if not isinstance(peer, tuple) or not peer:
            return  # not a socket (a test double): nothing more to check
        try:
            ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        except ValueError:
            ip = None
        reason = "not an IP address" if ip is None else is_forbidden_ip(ip, self._config.allow_networks)
        if reason is not None:
            stream.close()
            raise MediaError(
                ErrorCode.URL_FORBIDDEN, f"refusing to fetch from {host}: connected to {peer[0]} ({reason})"
            )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise MediaError(ErrorCode.URL_FORBIDDEN, "unix sockets are never fetched from")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every wait ends by one deadline: a peer that dribbles a byte per second (in the
    headers or the body) never resets a clock, unlike the per-read timeout."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner, self._deadline = inner, deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the exchange's overall deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport with its connection pool rebuilt on a `GuardedBackend`.

    No proxy: a proxy would make the connection to its own address and bypass the checks.
    """

    def __init__(self, backend: GuardedBackend) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),  # nothing read from the environment
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def guarded_client(
    config: FetchConfig,
    network_backend: httpcore.NetworkBackend | None = None,
    *,
    deadline: float | None = None,
) -> httpx.Client:
    """An httpx client that can only reach public addresses and never follows redirects by itself;
    with `deadline` (a time.monotonic() value), no socket wait of its connections lasts past it."""
    return httpx.Client(
        transport=GuardedTransport(GuardedBackend(config, network_backend, deadline)),
        trust_env=False,  # no proxies, .netrc or SSL_CERT_FILE from the environment
        follow_redirects=False,  # followed by hand so that each hop's scheme is checked
        timeout=_timeout(config, config.total_timeout_s),
        # identity: a compressed body would be counted after decoding; video does not compress anyway.
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "identity"},
    )


@contextmanager
def open_source(
    source: str, config: FetchConfig, *, network_backend: httpcore.NetworkBackend | None = None
) -> Iterator[LocalMedia]:
    """Yield `source` as a local file; a download lives in a temp dir removed on exit, whatever happens.

    `network_backend` replaces the socket layer under the address guard (tests record connections).
    Raises MediaError (INVALID_SOURCE, UNSUPPORTED_SCHEME, NOT_FOUND, EMPTY_FILE, URL_FORBIDDEN, FETCH_*).
    """
    local = _local_path(source)
    if local is not None:
        yield _open_local(source, local)
        return
    tmpdir = Path(tempfile.mkdtemp(prefix="reelsense-fetch-"))
    try:
        yield _download(source, config, tmpdir, network_backend)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _local_path(source: str) -> Path | None:
    """The path a local source names; None for an http(s) URL; raises for anything else."""
    if not isinstance(source, str) or not source.strip() or "\x00" in source:
        raise MediaError(ErrorCode.INVALID_SOURCE, f"not a path or URL: {source!r}")
    match = _SCHEME.match(source)
    if match is None:
        return Path(source)
    scheme = match.group(1).lower()
    if scheme in ("http", "https"):
        _check_http_url(source)
        return None
    if scheme == "file":
        parts = urllib.parse.urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise MediaError(ErrorCode.UNSUPPORTED_SCHEME, f"file URL with a host is not supported: {source}")
        if not parts.path:
            raise MediaError(ErrorCode.INVALID_SOURCE, f"file URL without a path: {source}")
        return Path(urllib.request.url2pathname(parts.path))
    raise MediaError(
        ErrorCode.UNSUPPORTED_SCHEME,
        f"unsupported scheme {scheme!r} in {source[:200]!r}: use http(s):// or a local path "
        "(write ./name for a file whose name contains a colon)",
    )


def _open_local(source: str, path: Path) -> LocalMedia:
    if not path.exists():
        raise MediaError(ErrorCode.NOT_FOUND, f"no such file: {path}")
    if not path.is_file():
        raise MediaError(ErrorCode.INVALID_SOURCE, f"not a regular file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(ErrorCode.EMPTY_FILE, f"file is empty: {path}")
    return LocalMedia(source=source, path=path.absolute(), downloaded=False, size_bytes=size)


def _check_http_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise MediaError(ErrorCode.INVALID_SOURCE, f"invalid URL {url[:200]!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise MediaError(ErrorCode.UNSUPPORTED_SCHEME, f"unsupported scheme {parsed.scheme!r} in {url[:200]}")
    if not parsed.host:
        raise MediaError(ErrorCode.INVALID_SOURCE, f"URL without a host: {url[:200]!r}")
    return parsed


def _timeout(config: FetchConfig, remaining_s: float) -> httpx.Timeout:
    # No single wait may outlast the whole-download budget.
    remaining_s = max(remaining_s, 0.001)
    return httpx.Timeout(
        connect=min(config.connect_timeout_s, remaining_s),
        read=min(config.read_timeout_s, remaining_s),
        write=min(config.read_timeout_s, remaining_s),
        pool=min(config.connect_timeout_s, remaining_s),
    )


def _download(
    source: str, config: FetchConfig, tmpdir: Path, network_backend: httpcore.NetworkBackend | None
) -> LocalMedia:
    deadline = time.monotonic() + config.total_timeout_s
    url = source
    with guarded_client(config, network_backend, deadline=deadline) as client:
        for _hop in range(config.max_redirects + 1):
            _check_http_url(url)  # every hop: a redirect may point to file://, gopher://, ...
            outcome = _get_with_retries(client, url, config, deadline, tmpdir)
            if isinstance(outcome, LocalMedia):
                return LocalMedia(
                    source=source,
                    path=outcome.path,
                    downloaded=True,
                    size_bytes=outcome.size_bytes,
                    content_type=outcome.content_type,
                )
            url = outcome
    raise MediaError(
        ErrorCode.TOO_MANY_REDIRECTS, f"more than {config.max_redirects} redirects fetching {source[:200]}"
    )


class _Retryable(Exception):
    """A failure worth another attempt; carries the error to raise when attempts run out."""

    def __init__(self, error: MediaError) -> None:
        super().__init__(error.message)
        self.error = error


def _get_with_retries(
    client: httpx.Client, url: str, config: FetchConfig, deadline: float, tmpdir: Path
) -> LocalMedia | str:
    """One hop: the downloaded file, or the URL it redirects to."""
    delay = config.retry_backoff_s
    attempt = 0
    while True:
        try:
            return _get_once(client, url, config, deadline, tmpdir)
        except _Retryable as exc:
            if attempt >= config.retries or time.monotonic() + delay >= deadline:
                raise exc.error from exc
        time.sleep(delay)
        delay *= 2
        attempt += 1


def _get_once(
    client: httpx.Client, url: str, config: FetchConfig, deadline: float, tmpdir: Path
) -> LocalMedia | str:
    shown = url[:200]
    try:
        timeout = _timeout(config, deadline - time.monotonic())
        with client.stream("GET", url, timeout=timeout) as response:
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                return _redirect_target(response)
            if status in _RETRY_STATUSES:
                raise _Retryable(MediaError(ErrorCode.FETCH_HTTP_ERROR, f"HTTP {status} from {shown}"))
            if not 200 <= status < 300:
                raise MediaError(ErrorCode.FETCH_HTTP_ERROR, f"HTTP {status} from {shown}")
            return _save_body(response, config, deadline, tmpdir)
    except httpx.ConnectTimeout as exc:
        raise _Retryable(MediaError(ErrorCode.FETCH_TIMEOUT, f"connecting to {shown} timed out")) from exc
    except httpx.ConnectError as exc:
        raise _Retryable(MediaError(ErrorCode.FETCH_FAILED, f"cannot connect to {shown}: {exc}")) from exc
    except httpx.TimeoutException as exc:
        raise MediaError(ErrorCode.FETCH_TIMEOUT, f"fetching {shown} timed out") from exc
    except httpx.HTTPError as exc:  # protocol errors, a connection cut mid-body, bad encodings
        raise MediaError(ErrorCode.FETCH_FAILED, f"fetching {shown} failed: {exc}") from exc


def _redirect_target(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise MediaError(ErrorCode.FETCH_HTTP_ERROR, f"HTTP {response.status_code} without a Location")
    try:
        target = response.url.join(location).copy_with(fragment=None)
    except (httpx.InvalidURL, ValueError) as exc:
        raise MediaError(ErrorCode.INVALID_SOURCE, f"invalid redirect target {location[:200]!r}") from exc
    return str(target)


def _save_body(response: httpx.Response, config: FetchConfig, deadline: float, tmpdir: Path) -> LocalMedia:
    shown = str(response.url)[:200]
    declared = _content_length(response)
    if declared is not None and declared > config.max_bytes:
        raise _too_large(shown, config)  # refused before a single body byte is read
    _check_encoding(response, shown)
    content_type = _media_type(response.headers.get("content-type"))
    path = tmpdir / ("download" + _suffix(response.url.path, content_type))
    size = 0
    try:
        with path.open("wb") as out:
            # iter_bytes() without a chunk size yields each read as it arrives, so both checks run
            # per network read (<= 64 KiB), also for a chunked body that declared no length.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > config.max_bytes:
                    raise _too_large(shown, config)
                if time.monotonic() > deadline:
                    raise MediaError(
                        ErrorCode.FETCH_TIMEOUT,
                        f"fetching {shown} took longer than {config.total_timeout_s:g} s",
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a partial file behind, even for the caller's tmpdir
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise MediaError(ErrorCode.EMPTY_FILE, f"{shown} returned an empty body")
    return LocalMedia(source=shown, path=path, downloaded=True, size_bytes=size, content_type=content_type)


def _check_encoding(response: httpx.Response, shown: str) -> None:
    """Refuse a body in an encoding that was not asked for (we send `Accept-Encoding: identity`).

    httpx would decode it, and the size limit counts decoded bytes only after each network read is
    decoded: "gzip, gzip" turns one 5 KB read into gigabytes before any check runs.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise MediaError(
            ErrorCode.FETCH_FAILED,
            f"{shown} answered with Content-Encoding {encoding[:50]!r} although only identity was "
            "accepted: refused unread",
        )


def _too_large(shown: str, config: FetchConfig) -> MediaError:
    return MediaError(ErrorCode.FETCH_TOO_LARGE, f"{shown} is larger than {config.max_bytes} bytes")


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None  # absent or malformed: the streaming count still applies
    return int(value)


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    media_type = header.split(";", 1)[0].strip().lower()
    return media_type or None


def _suffix(url_path: str, content_type: str | None) -> str:
    """A file suffix from the URL path, then the Content-Type; ".bin" when neither is a known type.

    Only known suffixes are used, so nothing from the URL can shape the file name beyond them.
    """
    name = urllib.parse.unquote(url_path).rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower() if "." in name else ""
    if suffix in _KNOWN_SUFFIXES:
        return suffix
    if content_type in _CONTENT_TYPE_SUFFIX:
        return _CONTENT_TYPE_SUFFIX[content_type]
    return ".bin"
