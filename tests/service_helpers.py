"""Helpers for the service tests: a real uvicorn server on a loopback port, a fake analyzer, and small
loopback HTTP servers (a video origin and a webhook receiver).

Safety: the fake analyzer fetches through pipeline.fetch with a resolver that refuses every name (no DNS
query leaves the machine) and a network backend that connects to loopback only and records the rest.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from core.errors import ErrorCode, MediaError
from models.labels import LabelSet
from pipeline.config import AnalyzerConfig, FetchConfig
from pipeline.fetch import open_source
from pipeline.prediction import Prediction, new_id
from pipeline.progress import ProgressFn, ProgressReporter, StopFn
from service.app import create_app
from service.settings import Settings
from service.worker import AnalyzerFactory, AnalyzerLike
from tests.net_helpers import RecordingBackend


def no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"test resolver: no DNS lookups ({host})")


class FakeAnalyzer:
    """Reads the source (through the real fetch layer for URLs) and acts on its content:
    b"bad..." -> invalid_media, b"sleep:S" -> sleeps S seconds, b"block" -> reports the transcribe stage
    and waits for `gate`, b"spin" -> works (in small steps) until `should_stop` says why, and records it
    in `.stopped`. The head (a path the service resolved) is echoed in the evidence."""

    def __init__(self, fetch: FetchConfig, backend: RecordingBackend, gate: threading.Event) -> None:
        self.fetch, self.backend, self.gate = fetch, backend, gate
        self.calls: list[str] = []
        self.stopped: list[str] = []  # the error code each "spin" analysis was stopped with

    def analyze(
        self,
        source: str,
        labels: LabelSet | None = None,
        *,
        head: str | Path | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> Prediction:
        self.calls.append(source)
        reporter = ProgressReporter(progress, should_stop)
        reporter.stage("fetch")
        try:
            with open_source(source, self.fetch, network_backend=self.backend) as local:
                data = Path(local.path).read_bytes()
        except MediaError as exc:
            return Prediction.failed(source, exc)
        if data.startswith(b"bad"):
            return Prediction.failed(source, MediaError(ErrorCode.INVALID_MEDIA, "not a media file"))
        if data.startswith(b"sleep:"):
            time.sleep(float(data[6:].decode()))
        if data.startswith(b"spin"):
            try:
                while True:  # a long analysis: a stage boundary every few milliseconds
                    reporter.check()
                    self.gate.wait(0.005)
            except MediaError as exc:
                self.stopped.append(exc.code.value)
                return Prediction.failed(source, exc)
        if data.startswith(b"block"):
            reporter.stage("transcribe")
            self.gate.wait(30)
        evidence: dict[str, Any] = {
            "bytes": len(data),
            "labels": labels.source if labels else None,
            "head": Path(head).name if head else None,
        }
        return Prediction(
            id=new_id(), source=source, status="ok", evidence=evidence,
            timings_ms={"fetch": 1.0, "vision": 2.0, "total": 3.0},
        )  # fmt: skip


class FakeFactory:
    """An AnalyzerFactory that makes FakeAnalyzers; `load_gate` (if given) holds model loading."""

    def __init__(self, load_gate: threading.Event | None = None) -> None:
        self.backend = RecordingBackend()
        self.gate = threading.Event()
        self.load_gate = load_gate
        self.analyzers: list[FakeAnalyzer] = []

    def __call__(self, config: AnalyzerConfig) -> AnalyzerLike:
        if self.load_gate is not None:
            self.load_gate.wait(30)
        analyzer = FakeAnalyzer(replace(config.media.fetch, resolver=no_dns), self.backend, self.gate)
        self.analyzers.append(analyzer)
        return analyzer


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for a test: no env file, a private job DB and upload dir."""
    values: dict[str, Any] = {"jobs_db": tmp / "jobs.sqlite3", "upload_dir": tmp / "uploads", **overrides}
    return Settings(_env_file=None, **values)


def free_port() -> int:
    """A loopback port nobody listens on now (for servers started in another process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def live_server(settings: Settings, factory: AnalyzerFactory | None) -> Iterator[str]:
    """Run the app with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, factory), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def wait_ready(client: httpx.Client, timeout_s: float = 60.0) -> None:
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s)


def poll_job(
    client: httpx.Client, job_id: str, statuses: set[str], timeout_s: float = 10.0
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(client.get(f"/v1/jobs/{job_id}").json())
        return found.get("status") in statuses

    wait_until(done, timeout_s)
    return found


class _Origin(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's reverse DNS lookup (getfqdn)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.posts: list[tuple[str, bytes]] = []
        self.post_statuses: list[int] = []


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Origin

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"missing"))
        self._reply(status, headers, body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts.append((self.path, body))
        statuses = self.server.post_statuses
        self._reply(statuses.pop(0) if statuses else 200, {}, b"")


@contextlib.contextmanager
def origin_server() -> Iterator[_Origin]:
    """A loopback HTTP server: GET answers from `.routes`, POST bodies land in `.posts`."""
    server = _Origin(("127.0.0.1", 0), _OriginHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
