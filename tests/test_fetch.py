"""open_source against a real HTTP server on 127.0.0.1.

Safety: every name goes through a fake resolver, every connection through `RecordingBackend`, which
refuses (and records) any address that is not loopback, and `socket.getaddrinfo` is patched so that
even a bug below the guard cannot resolve a name or reach a non-loopback address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest

from core.errors import ErrorCode, MediaError
from pipeline.config import FetchConfig
from pipeline.fetch import open_source
from pipeline.types import LocalMedia
from tests.net_helpers import RecordingBackend

PAYLOAD = bytes(range(256)) * 64  # 16 KiB, every byte value
LOOPBACK = ("127.0.0.0/8",)


class Server(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn (a reverse DNS lookup); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.release_slow = threading.Event()  # /slow answers only once a test sets it

    def count(self, key: str) -> int:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes = b"", content_type: str = "video/mp4", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.hits.append(self.path)
        # The client hangs up on purpose in the timeout and size tests.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.route(parts.path, query)

    def route(self, path: str, query: dict[str, str]) -> None:
        if path == "/video.mp4":
            self.send(200, PAYLOAD)
        elif path == "/blob":
            self.send(200, PAYLOAD, "video/webm; codecs=vp9")
        elif path == "/octet":
            self.send(200, PAYLOAD, "application/octet-stream")
        elif path == "/empty":
            self.send(200, b"")
        elif path == "/status":
            self.send(int(query["code"]), b"error page", "text/plain")
        elif path == "/flaky":
            failed = self.server.count(query["key"]) <= int(query["fails"])
            self.send(503, b"busy", "text/plain") if failed else self.send(200, PAYLOAD)
        elif path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            self.send(302, b"", "text/plain", Location=f"/redirect/{n - 1}" if n > 0 else "/video.mp4")
        elif path == "/to":
            self.send(302, b"", "text/plain", Location=query["url"])
        elif path == "/slow":
            self.server.release_slow.wait(60)
            self.send(200, PAYLOAD)
        elif path == "/drip":
            self.drip(int(query.get("n", "40")))
        elif path == "/big":
            self.send(200, PAYLOAD * 10)
        elif path == "/chunked":
            self.chunked(int(query.get("n", "20")))
        else:
            self.send(404, b"no such route", "text/plain")

    def drip(self, n: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        try:
            for _ in range(n):  # one byte every 50 ms: never silent long enough for a read timeout
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client gave up (the point of the test)
            pass

    def chunked(self, n: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(n):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The last line of defence: no name resolution and no non-loopback address, whatever the code does."""
    real = socket.getaddrinfo
    violations: list[str] = []

    def guarded(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None or not ip.is_loopback:
            violations.append(str(host))
            raise OSError(f"test refuses to resolve or reach {host!r}")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield violations
    assert violations == []


@pytest.fixture(autouse=True)
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every temp dir fetch makes lands here, and none may be left after a test."""
    root = tmp_path / "fetch-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    assert list(root.iterdir()) == []


class FakeResolver:
    def __init__(self, answers: dict[str, list[list[str]]] | None = None) -> None:
        self.answers = answers or {}  # successive answers per name; the last one repeats
        self.queries: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.answers[host]
        return answers[min(self.queries.count(host), len(answers)) - 1]


def cfg(**overrides: Any) -> FetchConfig:
    values: dict[str, Any] = {
        "allow_networks": LOOPBACK,
        "resolver": FakeResolver(),
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
        "total_timeout_s": 10.0,
        "retries": 0,
        "retry_backoff_s": 0.01,
    }
    values.update(overrides)
    return FetchConfig(**values)


def fetch_error(
    source: str, config: FetchConfig, backend: httpcore.NetworkBackend | None = None
) -> MediaError:
    with pytest.raises(MediaError) as info, open_source(source, config, network_backend=backend):
        pass
    return info.value


def test_download(base: str, temp_root: Path) -> None:
    backend = RecordingBackend()
    with open_source(f"{base}/video.mp4", cfg(), network_backend=backend) as media:
        assert isinstance(media, LocalMedia)
        assert media.downloaded and media.source == f"{base}/video.mp4"
        assert media.path.read_bytes() == PAYLOAD and media.size_bytes == len(PAYLOAD)
        assert media.content_type == "video/mp4" and media.path.suffix == ".mp4"
        assert media.path.parent.parent == temp_root
    assert not media.path.exists()
    assert backend.hosts() == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("path", "suffix", "content_type"),
    [("/blob", ".webm", "video/webm"), ("/octet", ".bin", "application/octet-stream")],
)
def test_suffix_from_content_type(base: str, path: str, suffix: str, content_type: str) -> None:
    with open_source(base + path, cfg(), network_backend=RecordingBackend()) as media:
        assert media.path.suffix == suffix and media.content_type == content_type
        assert media.path.read_bytes() == PAYLOAD


def test_temp_dir_removed_when_the_body_raises(base: str, temp_root: Path) -> None:
    with pytest.raises(RuntimeError), open_source(f"{base}/video.mp4", cfg()) as media:
        assert media.path.exists()
        raise RuntimeError("consumer failed")
    assert list(temp_root.iterdir()) == []


def test_http_errors_are_not_retried(base: str, server: Server) -> None:
    error = fetch_error(f"{base}/missing", cfg(retries=2), RecordingBackend())
    assert error.code == ErrorCode.FETCH_HTTP_ERROR and "404" in error.message
    before = len(server.hits)
    error = fetch_error(f"{base}/status?code=403", cfg(retries=2), RecordingBackend())
    assert error.code == ErrorCode.FETCH_HTTP_ERROR and "403" in error.message
    assert len(server.hits) == before + 1


def test_empty_body(base: str) -> None:
    assert fetch_error(f"{base}/empty", cfg(), RecordingBackend()).code == ErrorCode.EMPTY_FILE


def test_read_timeout(base: str, server: Server) -> None:
    # /slow answers only when released (after the fetch returned): without a read timeout the fetch would
    # block for a minute and then succeed, so the error alone proves the timeout, with no clock to read.
    server.release_slow.clear()
    try:
        error = fetch_error(f"{base}/slow", cfg(read_timeout_s=0.3), RecordingBackend())
    finally:
        server.release_slow.set()
    assert error.code == ErrorCode.FETCH_TIMEOUT and "timed out" in error.message


def test_slow_drip_hits_the_total_timeout(base: str) -> None:
    # 400 bytes at one per 50 ms (20 s), never silent for the 10 s read timeout: only the 0.5 s total
    # deadline can stop it (a missing deadline would finish the body and succeed), no clock read here.
    config = cfg(read_timeout_s=10.0, total_timeout_s=0.5)
    error = fetch_error(f"{base}/drip?n=400", config, RecordingBackend())
    assert error.code == ErrorCode.FETCH_TIMEOUT


def test_too_large_by_content_length(base: str) -> None:
    error = fetch_error(f"{base}/big", cfg(max_bytes=50_000), RecordingBackend())
    assert error.code == ErrorCode.FETCH_TOO_LARGE


def test_too_large_chunked_without_length(base: str) -> None:
    error = fetch_error(f"{base}/chunked", cfg(max_bytes=50_000), RecordingBackend())
    assert error.code == ErrorCode.FETCH_TOO_LARGE


def test_chunked_within_limit(base: str) -> None:
    with open_source(f"{base}/chunked?n=2", cfg(max_bytes=50_000)) as media:
        assert media.path.read_bytes() == PAYLOAD * 2 and media.size_bytes == 2 * len(PAYLOAD)


def test_redirects_are_followed(base: str, server: Server) -> None:
    before = len(server.hits)
    with open_source(f"{base}/redirect/2", cfg(max_redirects=3), network_backend=RecordingBackend()) as media:
        assert media.path.read_bytes() == PAYLOAD and media.source == f"{base}/redirect/2"
    assert server.hits[before:] == ["/redirect/2", "/redirect/1", "/redirect/0", "/video.mp4"]


def test_too_many_redirects(base: str, server: Server) -> None:
    before = len(server.hits)
    error = fetch_error(f"{base}/redirect/5", cfg(max_redirects=2), RecordingBackend())
    assert error.code == ErrorCode.TOO_MANY_REDIRECTS
    assert len(server.hits) == before + 3


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://internal.example/video.mp4",  # the fake resolver says 192.168.0.10
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",  # 169.254.169.254 as an integer
        "https://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_redirect_to_internal_address_is_refused(base: str, target: str) -> None:
    backend = RecordingBackend()
    resolver = FakeResolver({"internal.example": [["192.168.0.10"]]})
    error = fetch_error(f"{base}/to?url={target}", cfg(resolver=resolver), backend)
    assert error.code == ErrorCode.URL_FORBIDDEN
    assert backend.hosts() == {"127.0.0.1"}  # only the first hop connected anywhere


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/a.mp4", "gopher://example.com/"])
def test_redirect_to_other_scheme_is_refused(base: str, target: str) -> None:
    backend = RecordingBackend()
    error = fetch_error(f"{base}/to?url={target}", cfg(), backend)
    assert error.code == ErrorCode.UNSUPPORTED_SCHEME
    assert backend.hosts() == {"127.0.0.1"}


def test_503_then_200_is_retried(base: str, server: Server) -> None:
    with open_source(
        f"{base}/flaky?key=a&fails=1", cfg(retries=2), network_backend=RecordingBackend()
    ) as media:
        assert media.path.read_bytes() == PAYLOAD
    assert server.counters["a"] == 2


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_retries_are_bounded(base: str, server: Server, code: int) -> None:
    before = len(server.hits)
    error = fetch_error(f"{base}/status?code={code}", cfg(retries=2), RecordingBackend())
    assert error.code == ErrorCode.FETCH_HTTP_ERROR and str(code) in error.message
    assert len(server.hits) == before + 3


def test_connection_refused_is_retried_then_fails() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = RecordingBackend()
    error = fetch_error(f"http://127.0.0.1:{port}/x.mp4", cfg(retries=2), backend)
    assert error.code == ErrorCode.FETCH_FAILED
    assert backend.attempts == [("127.0.0.1", port)] * 3


def test_unknown_name_fails_without_connecting() -> None:
    backend = RecordingBackend()
    error = fetch_error("http://nowhere.example/a.mp4", cfg(), backend)
    assert error.code == ErrorCode.FETCH_FAILED
    assert backend.attempts == []


def test_loopback_refused_by_default_and_allowed_on_request(server: Server) -> None:
    port = server.server_port
    for host in ("127.0.0.1", "127.1", "0x7f000001", "2130706433", "localhost", "[::ffff:127.0.0.1]"):
        backend = RecordingBackend()
        error = fetch_error(f"http://{host}:{port}/video.mp4", FetchConfig(resolver=FakeResolver()), backend)
        assert error.code == ErrorCode.URL_FORBIDDEN, host
        assert backend.attempts == []
    for host in ("127.0.0.1", "127.1", "0x7f000001", "localhost"):
        backend = RecordingBackend()
        with open_source(f"http://{host}:{port}/video.mp4", cfg(), network_backend=backend) as media:
            assert media.path.read_bytes() == PAYLOAD
        assert backend.attempts == [("127.0.0.1", port)]  # the canonical vetted IP, never the spelling


def test_dns_rebinding_name_is_resolved_once_and_pinned(server: Server) -> None:
    # Public first, loopback after: whatever a second resolution would say, the connection goes to the
    # address that was checked, and the name never reaches a layer that could resolve it again.
    resolver = FakeResolver({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    backend = RecordingBackend()
    url = f"http://rebind.example:{server.server_port}/video.mp4"
    error = fetch_error(url, FetchConfig(resolver=resolver, retries=0), backend)
    assert error.code == ErrorCode.FETCH_FAILED  # the test backend refused the public address
    assert resolver.queries == ["rebind.example"]
    assert backend.attempts == [("93.184.216.34", server.server_port)]
    # The next lookup answers loopback: refused before any connection.
    backend = RecordingBackend()
    assert fetch_error(url, FetchConfig(resolver=resolver), backend).code == ErrorCode.URL_FORBIDDEN
    assert backend.attempts == []


def test_address_actually_connected_to_is_checked(server: Server) -> None:
    # The name resolves to a public address but the connection lands on loopback (rebinding below DNS,
    # a NAT, a misbehaving backend): the peer check refuses before a request is sent.
    resolver = FakeResolver({"cdn.example": [["93.184.216.34"]]})
    backend = RecordingBackend(misroute_to=server.server_port)
    before = len(server.hits)
    error = fetch_error("http://cdn.example/secret.mp4", FetchConfig(resolver=resolver), backend)
    assert error.code == ErrorCode.URL_FORBIDDEN and "127.0.0.1" in error.message
    assert backend.attempts == [("93.184.216.34", 80)]
    assert backend.sent == [b""], "the connection was closed before any byte of the request was written"
    assert server.hits[before:] == []


@pytest.mark.parametrize(
    "source",
    [
        "ftp://example.com/a.mp4",
        "file://host/x.mp4",
        "data:video/mp4;base64,AAAA",
        "gopher://example.com/",
        "javascript:alert(1)",
        "sftp://example.com/a.mp4",
    ],
)
def test_unsupported_schemes(source: str) -> None:
    backend = RecordingBackend()
    assert fetch_error(source, cfg(), backend).code == ErrorCode.UNSUPPORTED_SCHEME
    assert backend.attempts == []


@pytest.mark.parametrize(
    "source", ["", "   ", "http://", "https:///no-host", "http://[::1/", "a\x00b", "file://"]
)
def test_invalid_sources(source: str) -> None:
    assert fetch_error(source, cfg(), RecordingBackend()).code == ErrorCode.INVALID_SOURCE


def test_local_files(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(PAYLOAD)
    for source in (str(clip), clip.as_uri(), f"file://localhost{clip}"):
        with open_source(source, cfg()) as media:
            assert not media.downloaded and media.path == clip and media.size_bytes == len(PAYLOAD)
    assert clip.exists()  # a local source is never deleted


def test_local_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert fetch_error(str(tmp_path / "missing.mp4"), cfg()).code == ErrorCode.NOT_FOUND
    assert fetch_error((tmp_path / "missing.mp4").as_uri(), cfg()).code == ErrorCode.NOT_FOUND
    assert fetch_error(str(empty), cfg()).code == ErrorCode.EMPTY_FILE
    assert fetch_error(str(tmp_path), cfg()).code == ErrorCode.INVALID_SOURCE


def test_proxy_settings_in_the_environment_are_ignored(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would make the connection itself, past the address checks.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    monkeypatch.setenv("NO_PROXY", "")
    backend = RecordingBackend()
    with open_source(f"{base}/video.mp4", cfg(), network_backend=backend) as media:
        assert media.path.read_bytes() == PAYLOAD
    assert backend.hosts() == {"127.0.0.1"}
