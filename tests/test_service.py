"""The HTTP service against a real uvicorn server on 127.0.0.1, over HTTP with httpx.

A fake analyzer is used where the point is the HTTP layer; one test runs `reelsense serve` with the real
models end to end. The readiness tests drive the app in-process (Starlette's TestClient) to reach its
worker pool's events.
Every connection a test causes goes to loopback: attack URLs are refused by the fetch layer's address
guard before any connection (checked with a backend that records what it is asked to reach).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.config import AnalyzerConfig
from service.app import create_app
from service.errors import ApiError
from service.inputs import resolve_head
from service.settings import Settings, auth_problem, default_jobs_db, is_loopback_host
from service.worker import AnalyzerLike
from tests.fresh_interpreter import modules_loaded_by
from tests.service_helpers import (
    FakeFactory,
    live_server,
    make_settings,
    origin_server,
    poll_job,
    wait_ready,
    wait_until,
)

LOOPBACK = "127.0.0.0/8"


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in response.text
    assert response.headers.get("x-request-id")
    return dict(body["error"])


@pytest.fixture
def fake() -> FakeFactory:
    return FakeFactory()


@pytest.fixture
def client(tmp_path: Path, fake: FakeFactory) -> Iterator[httpx.Client]:
    settings = make_settings(tmp_path, max_upload_mb=0.05, heads_dir=tmp_path / "heads")
    (tmp_path / "heads" / "mine").mkdir(parents=True)
    with live_server(settings, fake) as url, httpx.Client(base_url=url, timeout=20) as http:
        wait_ready(http)
        yield http


def upload(client: httpx.Client, data: bytes, path: str = "/v1/analyze", **fields: str) -> httpx.Response:
    return client.post(path, files={"file": ("clip.mp4", data, "video/mp4")}, data=fields)


def test_health_ready_and_request_id(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32  # made up when not given


def test_readyz_is_503_until_models_load(tmp_path: Path) -> None:
    loaded = threading.Event()
    with (
        live_server(make_settings(tmp_path), FakeFactory(load_gate=loaded)) as url,
        httpx.Client(base_url=url) as http,
    ):
        response = http.get("/readyz")
        assert response.status_code == 503 and error_of(response)["code"] == "not_ready"
        assert http.get("/healthz").status_code == 200
        loaded.set()
        wait_ready(http, 10)


def test_readyz_waits_for_every_workers_warm_up(tmp_path: Path) -> None:
    fake = FakeFactory()
    warming, release = threading.Event(), threading.Event()
    warmed: list[object] = []

    class Warming:
        """A fake analyzer with a warm-up that waits for the test."""

        def __init__(self, inner: AnalyzerLike) -> None:
            self.analyze = inner.analyze

        def warm_up(self) -> None:
            warming.set()
            release.wait(30)
            warmed.append(self)

    app = create_app(make_settings(tmp_path, workers=2), lambda config: Warming(fake(config)))
    with TestClient(app, base_url="http://127.0.0.1") as http:
        assert warming.wait(30)  # models loaded, warm-up running
        response = http.get("/readyz")
        assert response.status_code == 503 and error_of(response)["code"] == "not_ready"
        release.set()
        assert app.state.pool.wait_ready(30)
        assert http.get("/readyz").status_code == 200
    assert len(warmed) == 2 and len(fake.analyzers) == 2


def test_a_failed_warm_up_is_not_ready_and_says_why(tmp_path: Path) -> None:
    class Broken:
        def __init__(self, inner: AnalyzerLike) -> None:
            self.analyze = inner.analyze

        def warm_up(self) -> None:
            raise RuntimeError("the warm-up analysis failed: decode_failed")

    fake = FakeFactory()
    app = create_app(make_settings(tmp_path), lambda config: Broken(fake(config)))
    with TestClient(app, base_url="http://127.0.0.1") as http:
        assert not app.state.pool.wait_ready(30)
        response = http.get("/readyz")
        assert response.status_code == 503 and error_of(response)["code"] == "model_unavailable"
        assert "warm-up" in error_of(response)["message"]
        analysed = http.post("/v1/analyze", files={"file": ("clip.mp4", b"fine", "video/mp4")})
        assert analysed.status_code == 503 and error_of(analysed)["code"] == "model_unavailable"
    assert fake.analyzers[0].calls == []  # the broken analyzer analysed nothing


def test_analyze_upload(client: httpx.Client, tmp_path: Path) -> None:
    response = upload(client, b"video bytes", labels="cats, dogs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["source"] == "upload:clip.mp4"
    assert body["evidence"] == {"bytes": 11, "labels": "custom", "head": None}
    assert list((tmp_path / "uploads").iterdir()) == []  # the temp file is gone


def test_analyze_error_shapes(client: httpx.Client, tmp_path: Path) -> None:
    cases = [
        (upload(client, b"bad bytes"), 415, "invalid_media"),
        (upload(client, b""), 400, "empty_file"),
        (upload(client, b"x", labels="a,a"), 400, "invalid_labels"),
        (upload(client, b"x", head="../etc"), 400, "invalid_head"),
        (upload(client, b"x", head="nope"), 404, "head_not_found"),
        (client.get("/v1/nothing"), 404, "not_found"),
        (client.post("/v1/analyze", content=b"url=x", headers={"Content-Type": "text/plain"}), 415, None),
        (client.post("/v1/analyze", json={"labels": ["a"]}), 422, "validation_error"),
        (client.post("/v1/analyze", json={"url": "http://x", "labels": "a"}), 422, "validation_error"),
        (
            client.post("/v1/analyze", content=b"{not json", headers={"Content-Type": "application/json"}),
            422,
            None,
        ),
        (client.post("/v1/analyze", data={"labels": "a"}), 415, "unsupported_media_type"),
        (client.post("/v1/analyze", files={"other": ("a", b"x")}), 422, "validation_error"),
        (client.get("/v1/jobs", params={"limit": 0}), 422, "validation_error"),
        (client.get("/v1/jobs/unknown"), 404, "not_found"),
        (client.put("/v1/analyze"), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert code is None or error_of(response)["code"] == code
    assert upload(client, b"x", head="mine").status_code == 200
    assert list((tmp_path / "uploads").iterdir()) == []


def test_resolve_head_stays_inside_the_heads_dir(tmp_path: Path) -> None:
    (tmp_path / "heads" / "ok").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "heads" / "escape").symlink_to(tmp_path / "outside")
    assert resolve_head("ok", tmp_path / "heads") == (tmp_path / "heads" / "ok").resolve()
    for name, status in (("escape", 404), ("a/b", 400), ("..", 400), (".hidden", 400), ("x..y", 400)):
        with pytest.raises(ApiError) as caught:
            resolve_head(name, tmp_path / "heads")
        assert caught.value.status == status, name


def test_upload_size_limit(client: httpx.Client, tmp_path: Path) -> None:
    big = b"x" * 80_000  # the limit is 0.05 MiB (52 428 bytes)
    response = upload(client, big)
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        boundary = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        yield boundary
        for _ in range(40):
            yield b"y" * 64_000
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/v1/analyze", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"
    assert list((tmp_path / "uploads").iterdir()) == []


def test_sync_timeout_is_504_pointing_to_jobs(tmp_path: Path, fake: FakeFactory) -> None:
    with (
        live_server(make_settings(tmp_path, sync_timeout_s=0.3), fake) as url,
        httpx.Client(base_url=url) as http,
    ):
        wait_ready(http)
        response = upload(http, b"block")  # never finishes until the gate opens: no race with 0.3 s
        fake.gate.set()
        assert response.status_code == 504
        error = error_of(response)
        assert error["code"] == "timeout" and "POST /v1/jobs" in error["message"]


def test_full_queue_is_429_with_retry_after(tmp_path: Path, fake: FakeFactory) -> None:
    settings = make_settings(tmp_path, queue_size=1, retry_after_s=7)
    with live_server(settings, fake) as url, httpx.Client(base_url=url, timeout=20) as http:
        wait_ready(http)
        running = upload(http, b"block", "/v1/jobs").json()["id"]
        poll_job(http, running, {"running"})
        assert upload(http, b"one", "/v1/jobs").status_code == 202  # fills the queue
        for response in (upload(http, b"two", "/v1/jobs"), upload(http, b"three")):
            assert response.status_code == 429 and response.headers["retry-after"] == "7"
            assert error_of(response)["code"] == "queue_full"
        fake.gate.set()
        poll_job(http, running, {"succeeded"})


def test_api_keys(tmp_path: Path, fake: FakeFactory) -> None:
    settings = make_settings(tmp_path, api_keys="key-one, key-two")
    with live_server(settings, fake) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        assert http.get("/healthz").status_code == 200  # probes stay open
        missing = http.get("/v1/jobs")
        assert missing.status_code == 401 and error_of(missing)["code"] == "unauthorized"
        wrong = http.get("/v1/jobs", headers={"X-API-Key": "key-three"})
        assert wrong.status_code == 403 and error_of(wrong)["code"] == "forbidden"
        assert http.get("/metrics").status_code == 401
        assert http.get("/v1/jobs", headers={"X-API-Key": "key-two"}).status_code == 200
        assert http.get("/v1/jobs", headers={"Authorization": "Bearer key-one"}).status_code == 200


def test_auth_is_required_beyond_loopback(tmp_path: Path) -> None:
    from scripts.cli import main

    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("10.1.2.3")
    assert auth_problem(make_settings(tmp_path)) is None
    assert auth_problem(make_settings(tmp_path, host="0.0.0.0")) is not None
    assert auth_problem(make_settings(tmp_path, host="0.0.0.0", api_keys="k")) is None
    assert auth_problem(make_settings(tmp_path, host="0.0.0.0", insecure_no_auth=True)) is None
    env = tmp_path / "serve.env"
    env.write_text(f"REELSENSE_JOBS_DB={tmp_path / 'x.db'}\n")
    assert (
        main(["serve", "--host", "0.0.0.0", "--port", "1", "--env-file", str(env)]) == 2
    )  # refuses to start


def test_url_from_a_local_origin(tmp_path: Path, fake: FakeFactory) -> None:
    settings = make_settings(tmp_path, allow_networks=LOOPBACK)
    with origin_server() as origin, live_server(settings, fake) as url, httpx.Client(base_url=url) as http:
        origin.routes["/clip.mp4"] = (200, {"Content-Type": "video/mp4"}, b"z" * 1000)
        wait_ready(http)
        video = f"http://127.0.0.1:{origin.server_port}/clip.mp4"
        response = http.post("/v1/analyze", json={"url": video, "labels": ["a", "b"]})
        assert response.status_code == 200, response.text
        assert response.json()["evidence"]["bytes"] == 1000 and response.json()["source"] == video
        missing = http.post("/v1/analyze", json={"url": video + "x"})
        assert missing.status_code == 502 and error_of(missing)["code"] == "fetch_http_error"
    assert fake.backend.refused == []


ATTACK_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8000/metrics",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0.0.0.0/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "https://10.0.0.1:8443/",
    "file:///etc/passwd",
    "/etc/passwd",
    "ftp://10.0.0.1/x",
    "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:11211/",
    "data:video/mp4;base64,AAAA",
    "javascript:alert(1)",
]


def test_ssrf_attack_urls_are_refused_without_connecting(client: httpx.Client, fake: FakeFactory) -> None:
    assert len(ATTACK_URLS) >= 20
    for attack in ATTACK_URLS:
        response = client.post("/v1/analyze", json={"url": attack})
        assert response.status_code == 400, (attack, response.text)
        assert error_of(response)["code"] in {"url_forbidden", "unsupported_scheme", "invalid_source"}, attack
    job = client.post("/v1/jobs", json={"url": "http://10.0.0.1/"})
    assert poll_job(client, job.json()["id"], {"failed"})["error"]["code"] == "url_forbidden"
    hook = client.post(
        "/v1/jobs", json={"url": "http://a.example/", "webhook_url": "http://169.254.169.254/"}
    )
    assert hook.status_code == 400 and error_of(hook)["code"] == "url_forbidden"
    assert fake.backend.refused == []  # refused by the guard, before any connection


def test_redirect_into_private_network_is_refused(tmp_path: Path, fake: FakeFactory) -> None:
    settings = make_settings(tmp_path, allow_networks=LOOPBACK)  # the origin itself is allowed...
    with origin_server() as origin, live_server(settings, fake) as url, httpx.Client(base_url=url) as http:
        for path, target in (
            ("/a", "http://10.0.0.1/x"),
            ("/b", "http://169.254.169.254/"),
            ("/c", "file:///etc/passwd"),
        ):
            origin.routes[path] = (302, {"Location": target}, b"")
        wait_ready(http)
        for path, code in (("/a", "url_forbidden"), ("/b", "url_forbidden"), ("/c", "unsupported_scheme")):
            response = http.post("/v1/analyze", json={"url": f"http://127.0.0.1:{origin.server_port}{path}"})
            assert response.status_code == 400 and error_of(response)["code"] == code, response.text
    assert fake.backend.refused == []  # ...but not where it redirects


def test_jobs_lifecycle(client: httpx.Client, fake: FakeFactory) -> None:
    created = upload(client, b"payload", "/v1/jobs", idempotency_key="k-1")
    assert created.status_code == 202 and set(created.json()) == {"id", "status"}
    job_id = created.json()["id"]
    job = poll_job(client, job_id, {"succeeded"})
    assert job["result"]["status"] == "ok" and job["progress"] == 1.0 and job["stage"] == "done"
    assert job["created_at"] <= job["updated_at"]
    again = upload(client, b"other", "/v1/jobs", idempotency_key="k-1")
    assert again.status_code == 200 and again.json()["id"] == job_id
    failed = poll_job(client, upload(client, b"bad", "/v1/jobs").json()["id"], {"failed"})
    assert failed["error"]["code"] == "invalid_media" and "result" not in failed
    listed = client.get("/v1/jobs", params={"limit": 2}).json()["jobs"]
    assert [j["id"] for j in listed][1] == job_id and len(listed) == 2


def test_running_jobs_show_their_stage_and_progress(client: httpx.Client, fake: FakeFactory) -> None:
    job_id = upload(client, b"block", "/v1/jobs", head="mine").json()["id"]
    deadline = time.monotonic() + 20
    while (job := client.get(f"/v1/jobs/{job_id}").json())["stage"] != "transcribe":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["status"] == "running" and 0.1 < job["progress"] < 0.5
    fake.gate.set()
    done = poll_job(client, job_id, {"succeeded"})
    assert done["stage"] == "done" and done["progress"] == 1.0
    assert done["result"]["evidence"]["head"] == "mine"  # the resolved head reached the analyzer


def test_cancel_queued_and_running_jobs(client: httpx.Client, fake: FakeFactory, tmp_path: Path) -> None:
    running = upload(client, b"block", "/v1/jobs").json()["id"]
    poll_job(client, running, {"running"})
    queued = upload(client, b"never", "/v1/jobs").json()["id"]
    assert client.delete(f"/v1/jobs/{queued}").json()["status"] == "cancelled"
    cancelled = client.delete(f"/v1/jobs/{running}").json()
    assert cancelled["status"] == "cancelled" and cancelled["error"]["code"] == "cancelled"
    fake.gate.set()
    after = upload(client, b"after", "/v1/jobs").json()["id"]
    poll_job(client, after, {"succeeded"})  # the worker has moved past both
    assert client.get(f"/v1/jobs/{running}").json()["status"] == "cancelled"  # result discarded
    assert not any(call.endswith("never") for call in fake.analyzers[0].calls)
    assert len(fake.analyzers[0].calls) == 2
    assert client.delete("/v1/jobs/nope").status_code == 404
    assert list((tmp_path / "uploads").iterdir()) == []


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    first = FakeFactory()
    with live_server(make_settings(tmp_path), first) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        done = upload(http, b"finished", "/v1/jobs").json()["id"]
        poll_job(http, done, {"succeeded"})
        stuck = upload(http, b"block", "/v1/jobs").json()["id"]
        poll_job(http, stuck, {"running"})
    with live_server(make_settings(tmp_path), FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        assert http.get(f"/v1/jobs/{done}").json()["result"]["evidence"]["bytes"] == 8
        interrupted = http.get(f"/v1/jobs/{stuck}").json()
        assert interrupted["status"] == "failed" and interrupted["error"]["code"] == "interrupted"
        first.gate.set()  # the old worker finishes late: it must not overwrite the verdict
        wait_until(lambda: len(first.analyzers[0].calls) == 2)
        assert http.get(f"/v1/jobs/{stuck}").json()["status"] == "failed"


def test_webhook_is_retried_after_a_500(tmp_path: Path, fake: FakeFactory) -> None:
    settings = make_settings(tmp_path, webhook_allow_networks=LOOPBACK, webhook_backoff_s=0.05)
    with origin_server() as receiver, live_server(settings, fake) as url, httpx.Client(base_url=url) as http:
        receiver.post_statuses.extend([500])
        wait_ready(http)
        hook = f"http://127.0.0.1:{receiver.server_port}/hook"
        job_id = upload(http, b"video", "/v1/jobs", webhook_url=hook).json()["id"]
        wait_until(lambda: len(receiver.posts) == 2)
    import json

    bodies = [json.loads(body) for _, body in receiver.posts]
    assert all(body["id"] == job_id and body["status"] == "succeeded" for body in bodies)


def scrape(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics parsed: (sample name, its labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_what_the_requests_did(client: httpx.Client) -> None:
    ok_route = ("reelsense_http_requests_total", {"method": "POST", "route": "/v1/analyze", "status": "200"})
    keys = {
        "ok": ok_route,
        "invalid": ("reelsense_errors_total", {"code": "invalid_media"}),
        "vision": ("reelsense_stage_seconds_count", {"stage": "vision"}),
        "vision_sum": ("reelsense_stage_seconds_sum", {"stage": "vision"}),
        "latency": ("reelsense_http_request_seconds_count", {"route": "/v1/analyze"}),
        "succeeded": ("reelsense_jobs", {"status": "succeeded"}),
    }

    def values() -> dict[str, float]:
        scraped = scrape(client)
        return {
            key: scraped.get((name, frozenset(labels.items())), 0.0) for key, (name, labels) in keys.items()
        }

    before = values()
    assert upload(client, b"ok").status_code == 200
    assert upload(client, b"ok").status_code == 200
    bad = upload(client, b"bad")
    assert error_of(bad)["code"] == "invalid_media"
    poll_job(client, upload(client, b"job", "/v1/jobs").json()["id"], {"succeeded"})
    after = values()
    delta = {key: after[key] - before[key] for key in keys}
    assert delta["ok"] == 2 and delta["invalid"] == 1 and delta["latency"] == 3
    # The fake reports vision 2 ms for each of its three successful analyses (two sync, one job).
    assert delta["vision"] == 3 and delta["vision_sum"] == pytest.approx(0.006)
    assert delta["succeeded"] == 1  # the gauge is the store's count at scrape time
    assert scrape(client)[("reelsense_queue_depth", frozenset())] == 0


def _started_port(process: subprocess.Popen[str], lines: list[str]) -> int:
    """The port uvicorn says it bound (the command was given --port 0); reads stdout until it says so."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if found := re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line):
            return int(found.group(1))
    raise AssertionError("serve ended before it listened:\n" + "".join(lines))


def test_the_serve_command_answers_an_upload_with_the_real_models(tmp_path: Path) -> None:
    """`reelsense serve` as users start it: settings from REELSENSE_* variables, the bundled models, a
    loopback port picked by the OS (no free-port race), ready after warm-up, SIGINT shuts it down."""
    from tests.labelled_clips import CLIPS, make_clip

    clip = make_clip(next(c for c in CLIPS if c.name == "espresso"), tmp_path)
    env = {
        **os.environ,
        "REELSENSE_JOBS_DB": str(tmp_path / "jobs.sqlite3"),
        "REELSENSE_UPLOAD_DIR": str(tmp_path / "uploads"),
        "REELSENSE_FRAMES": "4",
        "REELSENSE_DEVICE": "cpu",
    }
    command = [sys.executable, "-m", "scripts.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        port = _started_port(process, lines)
        drain = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        drain.start()  # keep reading the log, so the server never blocks on a full pipe
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            wait_ready(http, 180)
            with clip.open("rb") as video:
                response = http.post("/v1/analyze", files={"file": ("espresso.mp4", video, "video/mp4")})
            assert response.status_code == 200, response.text
            body = response.json()
        assert body["status"] == "ok" and body["source"] == "upload:espresso.mp4"
        assert body["media"]["has_audio"]
        # The clip is labelled (tests/labelled_clips.py); the in-process tests get the same answer.
        assert (body["category"]["label"], body["sentiment"]["label"]) == ("food & cooking", "positive")
        assert "espresso" in body["transcript"]["text"].lower()
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (tmp_path / "reelsense-jobs.sqlite3").exists()  # the job DB went where it was told


def test_building_the_app_loads_no_models() -> None:
    code = (
        "from service.app import create_app\nfrom service.settings import Settings\n"
        "create_app(Settings(_env_file=None))"
    )
    assert modules_loaded_by(code, ("torch", "faster_whisper", "transformers")) == []


def test_workers_load_their_models_one_at_a_time(tmp_path: Path) -> None:
    """Two workers importing transformers at once broke its lazy imports; loading is serialised."""
    overlap = {"now": 0, "max": 0}
    lock = threading.Lock()
    another_entered = threading.Event()
    fake = FakeFactory()

    def slow_factory(config: AnalyzerConfig) -> AnalyzerLike:
        with lock:
            overlap["now"] += 1
            overlap["max"] = max(overlap["max"], overlap["now"])
            if overlap["now"] > 1:
                another_entered.set()
        # Serialised, nobody else enters while a load runs and this waits its full second; unserialised,
        # the next worker enters at once (the overlap is recorded above, whatever the machine's speed).
        another_entered.wait(1.0)
        with lock:
            overlap["now"] -= 1
        return fake(config)

    with (
        live_server(make_settings(tmp_path, workers=3), slow_factory) as url,
        httpx.Client(base_url=url) as http,
    ):
        wait_ready(http, 30)
    assert overlap["max"] == 1 and len(fake.analyzers) == 3


def test_default_jobs_db_is_in_the_user_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    assert default_jobs_db({"XDG_STATE_HOME": "/state", "HOME": "/home/u"}) == Path(
        "/state/reelsense/jobs.sqlite3"
    )
    home_default = Path("/home/u/.local/state/reelsense/jobs.sqlite3")
    assert default_jobs_db({"HOME": "/home/u"}) == default_jobs_db({"XDG_STATE_HOME": "", "HOME": "/home/u"})
    assert default_jobs_db({"HOME": "/home/u"}) == home_default
    # Settings read it from the environment at the edge, never relative to the working directory.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("REELSENSE_JOBS_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.jobs_db == tmp_path / "state" / "reelsense" / "jobs.sqlite3"
    settings = settings.model_copy(update={"upload_dir": tmp_path / "uploads"})
    with live_server(settings, FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
    assert settings.jobs_db.is_file() and list(tmp_path.glob("*.sqlite3*")) == []
