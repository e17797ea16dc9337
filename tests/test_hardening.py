"""Hostile media and hostile peers (issue 14): each test replays one attack on loopback with media it makes,
scaled down but over the limits it configures, and checks the service or stage refuses it and stays well.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import socketserver
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.errors import ErrorCode, MediaError
from models.labels import LabelSet
from pipeline.audio import decode_audio
from pipeline.config import AnalyzerConfig, AudioConfig, FetchConfig, FrameConfig, MediaConfig
from pipeline.fetch import open_source
from pipeline.frames import sample_frames
from pipeline.media import decode_media
from pipeline.prediction import Prediction, new_id
from pipeline.probe import probe
from pipeline.progress import ProgressFn, ProgressReporter, StopFn
from service.webhooks import WebhookSender
from tests import media_factory as mf
from tests.net_helpers import RecordingBackend
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


class ProbingAnalyzer:
    """Opens the source with the real media stages (probe, then the audio decode) and reports how much
    audio it read: enough to see whether a hostile file reached a file it names."""

    def __init__(self, config: AnalyzerConfig) -> None:
        self.config = config

    def analyze(
        self,
        source: str,
        labels: LabelSet | None = None,
        *,
        head: str | Path | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> Prediction:
        try:
            info = probe(source, max_pixels=self.config.media.max_pixels)
            audio = decode_audio(source, info, AudioConfig())
        except MediaError as exc:
            return Prediction.failed(source, exc)
        evidence: dict[str, Any] = {"container": info.container, "audio_s": audio.duration_s}
        return Prediction(id=new_id(), source=source, status="ok", evidence=evidence)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A server-side file nobody may read through the API: 3 s of audio in MPEG-TS."""
    folder = tmp_path / "server-private"
    folder.mkdir()
    path = folder / "secret.ts"
    mf.write_audio(path, mf.tone(3.0), codec="aac", container_format="mpegts")
    return path


def playlist(segment: str) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\n{segment}\n#EXT-X-ENDLIST\n".encode()


def assert_healthy(client: httpx.Client, media: bytes) -> None:
    """After an attack: ready, and the next (real) request is answered."""
    assert client.get("/readyz").status_code == 200
    response = client.post("/v1/analyze", files={"file": ("next.bin", media, "application/octet-stream")})
    assert response.status_code == 200, response.text


@pytest.fixture
def probing_client(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = make_settings(tmp_path, max_pixels=1_000_000)
    with live_server(settings, ProbingAnalyzer) as url, httpx.Client(base_url=url, timeout=30) as http:
        wait_ready(http)
        yield http


# -- 1. local file read through a playlist upload ------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "file_url"])
def test_playlist_upload_cannot_read_a_server_file(
    probing_client: httpx.Client, secret: Path, form: str
) -> None:
    segment = str(secret) if form == "path" else secret.as_uri()
    files = {"file": ("list.m3u8", playlist(segment), "application/vnd.apple.mpegurl")}
    response = probing_client.post("/v1/analyze", files=files)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "invalid_media"
    assert "audio_s" not in response.text
    ok = probing_client.post("/v1/analyze", files={"file": ("a.ts", secret.read_bytes(), "video/mp2t")})
    assert ok.status_code == 200 and ok.json()["evidence"]["audio_s"] > 2.5  # real media still works


def test_playlists_and_concat_lists_are_refused_by_every_stage(tmp_path: Path, secret: Path) -> None:
    hls = tmp_path / "list.m3u8"
    hls.write_bytes(playlist(str(secret)))
    neighbour = tmp_path / "uploads"
    neighbour.mkdir()
    (neighbour / "other-job.upload").write_bytes(secret.read_bytes())
    concat = neighbour / "mine.upload"  # a relative ffconcat entry naming a neighbour upload
    concat.write_text("ffconcat version 1.0\nfile other-job.upload\n")
    for path in (hls, concat):
        with pytest.raises(MediaError) as caught:
            probe(path)
        assert caught.value.code is ErrorCode.INVALID_MEDIA
        with pytest.raises(MediaError):  # the decode stages open through the same guard
            decode_audio(path, probe(secret), AudioConfig())


def test_downloaded_playlist_is_refused(tmp_path: Path, secret: Path) -> None:
    fetch = FetchConfig(allow_networks=(LOOPBACK,), resolver=lambda host, port: ["127.0.0.1"])
    with origin_server() as origin:
        origin.routes["/list.m3u8"] = (200, {"Content-Type": "application/x-mpegurl"}, playlist(str(secret)))
        url = f"http://127.0.0.1:{origin.server_port}/list.m3u8"
        with (
            open_source(url, fetch, network_backend=RecordingBackend()) as local,
            pytest.raises(MediaError) as caught,
        ):
            probe(local.path)
    assert caught.value.code is ErrorCode.INVALID_MEDIA


# -- 2. decompression bombs in the frames path ---------------------------------------------------------


@pytest.fixture
def pixel_bomb(tmp_path: Path) -> Path:
    """A few KB of H.264 at 1200x1200 with 16 reference frames: over a 1 MP limit (the attack: 16000^2)."""
    path = tmp_path / "bomb.mp4"
    mf.ffmpeg(
        "-f", "lavfi", "-i", "color=black:s=1200x1200:d=0.4:r=25", "-c:v", "libx264",
        "-preset", "ultrafast", "-x264-params", "ref=16", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def test_frames_above_max_pixels_are_refused_before_decoding(pixel_bomb: Path) -> None:
    with pytest.raises(MediaError) as caught:
        decode_media(pixel_bomb, MediaConfig(max_pixels=1_000_000), recognizer=None)
    assert caught.value.code is ErrorCode.FRAME_TOO_LARGE and "1200x1200" in caught.value.message
    assert decode_media(pixel_bomb, MediaConfig(), recognizer=None).frames.count > 0  # default: fine


def test_service_refuses_a_pixel_bomb(probing_client: httpx.Client, pixel_bomb: Path, secret: Path) -> None:
    files = {"file": ("bomb.mp4", pixel_bomb.read_bytes(), "video/mp4")}
    response = probing_client.post("/v1/analyze", files=files)
    assert response.status_code == 413 and response.json()["error"]["code"] == "frame_too_large"
    assert_healthy(probing_client, secret.read_bytes())


# -- 3. Content-Encoding stacking ----------------------------------------------------------------------


def test_stacked_content_encoding_is_refused_unread(tmp_path: Path) -> None:
    inner = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros...
    body = gzip.compress(inner, compresslevel=9)  # ...in a body of a few KB
    assert len(body) < 100_000
    fetch = FetchConfig(allow_networks=(LOOPBACK,), max_bytes=1024 * 1024, retries=0)
    with origin_server() as origin:
        origin.routes["/clip.mp4"] = (
            200,
            {"Content-Type": "video/mp4", "Content-Encoding": "gzip, gzip"},
            body,
        )
        url = f"http://127.0.0.1:{origin.server_port}/clip.mp4"
        tracemalloc.start()
        try:
            with (
                pytest.raises(MediaError) as caught,
                open_source(url, fetch, network_backend=RecordingBackend()),
            ):
                pass
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert caught.value.code is ErrorCode.FETCH_FAILED and "Content-Encoding" in caught.value.message
    assert peak < 16 * 1024 * 1024, f"{peak} bytes allocated while refusing"


# -- 4. webhook replies --------------------------------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    """A webhook receiver: /big answers 200 with a 64 MiB body, /drip dribbles its headers a byte at a
    time until `release` is set, anything else answers 204. Records what it received and sent."""

    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
        self.release = threading.Event()
        self.posts: list[str] = []
        self.sent = 0
        self.big_done = threading.Event()


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts.append(self.path)
        try:
            if self.path == "/big":
                self._big()
            elif self.path == "/drip":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.server.release.wait(0.05):
                    self.wfile.write(b"a")
                    self.wfile.flush()
            else:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
        except OSError:  # the client hung up: what the test wants
            pass

    def _big(self) -> None:
        total = 64 * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while self.server.sent < total:
                self.wfile.write(chunk)
                self.server.sent += len(chunk)
        finally:
            self.server.big_done.set()


@contextlib.contextmanager
def receiver() -> Iterator[_Receiver]:
    server = _Receiver(("127.0.0.1", 0), _ReceiverHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def sender(timeout_s: float = 30.0, retries: int = 0) -> WebhookSender:
    fetch = FetchConfig(allow_networks=(LOOPBACK,))
    return WebhookSender(fetch, retries=retries, backoff_s=0.01, timeout_s=timeout_s)


def test_webhook_reply_body_is_not_read() -> None:
    with receiver() as hook:
        assert sender().deliver(f"http://127.0.0.1:{hook.server_port}/big", {"id": "j1"})
        assert hook.big_done.wait(60)  # the receiver stops writing once the connection is closed...
        assert hook.sent < 32 * 1024 * 1024, hook.sent  # ...far short of the 64 MiB it offered


def test_dribbling_webhook_receiver_is_cut_by_the_deadline() -> None:
    with receiver() as hook:
        outcome: list[bool] = []
        worker = threading.Thread(
            target=lambda: outcome.append(
                sender(timeout_s=1.0).deliver(f"http://127.0.0.1:{hook.server_port}/drip", {"id": "j"})
            )
        )
        worker.start()
        worker.join(60)  # generous: without an overall deadline the dribble never ends
        assert outcome == [False]
        assert not hook.release.is_set()  # it was cut while still dribbling


def test_slow_webhook_receivers_do_not_delay_others() -> None:
    with receiver() as slow_a, receiver() as slow_b, receiver() as fast:
        webhooks = sender(timeout_s=120.0)
        try:
            for hook in (slow_a, slow_b):
                webhooks.send(f"http://127.0.0.1:{hook.server_port}/drip", {"id": "slow"})
            wait_until(lambda: slow_a.posts and slow_b.posts, 20)
            webhooks.send(f"http://127.0.0.1:{fast.server_port}/ok", {"id": "fast"})
            wait_until(lambda: fast.posts == ["/ok"], 20)  # while both slow ones still hold a thread
            assert not slow_a.release.is_set() and not slow_b.release.is_set()
        finally:
            slow_a.release.set()
            slow_b.release.set()
            webhooks.close()


def test_webhooks_have_their_own_allow_list(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, allow_networks=LOOPBACK)  # a local media server, nothing more
    with live_server(settings, ProbingAnalyzer) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        body = {"url": "http://127.0.0.1:9/clip.mp4", "webhook_url": "http://127.0.0.1:9/hook"}
        response = http.post("/v1/jobs", json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == "url_forbidden"
    assert settings.webhook_fetch_config().allow_networks == ()


# -- 6. duration and memory caps that could be bypassed ------------------------------------------------


@pytest.fixture
def lying_mp3(tmp_path: Path) -> Path:
    """5 s at 160 kb/s, then 55 s at 8 kb/s, no Xing header: the header estimate says ~8 s of 60."""
    parts = []
    for index, (seconds, rate) in enumerate(((5, "160k"), (55, "8k"))):
        part = tmp_path / f"part{index}.mp3"
        mf.ffmpeg(
            "-f", "lavfi", "-i", f"sine=f=300:d={seconds}", "-ar", "16000", "-ac", "1", "-c:a", "libmp3lame",
            "-b:a", rate, "-write_xing", "0", "-id3v2_version", "0", "-write_id3v1", "0", str(part),
        )  # fmt: skip
        parts.append(part.read_bytes())
    path = tmp_path / "lying.mp3"
    path.write_bytes(b"".join(parts))
    return path


def test_duration_cap_holds_on_decoded_timestamps(lying_mp3: Path) -> None:
    config = MediaConfig(max_duration_s=30.0)
    assert probe(lying_mp3).duration_s < 30.0  # the header lies...
    with pytest.raises(MediaError) as caught:
        decode_media(lying_mp3, config, recognizer=None)  # ...the decoded timestamps do not
    assert caught.value.code is ErrorCode.MEDIA_TOO_LONG


@pytest.fixture
def late_audio(tmp_path: Path) -> Path:
    """2 s of video, and audio that starts at 100 s."""
    path = tmp_path / "late.mp4"
    mf.ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x64:r=10:d=2", "-itsoffset", "100", "-f", "lavfi",
        "-i", "sine=d=2", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


def test_leading_silence_counts_against_the_caps(late_audio: Path) -> None:
    info = probe(late_audio)
    with pytest.raises(MediaError) as caught:  # refused before the silence is allocated
        decode_audio(late_audio, info, AudioConfig(), max_duration_s=30.0)
    assert caught.value.code is ErrorCode.MEDIA_TOO_LONG
    cut = decode_audio(late_audio, info, AudioConfig(max_duration_s=50.0))
    assert cut.duration_s <= 50.0 and not cut.samples.any()  # cut at the limit: all of it silence
    whole = decode_audio(late_audio, info, AudioConfig())
    assert 101.0 < whole.duration_s < 103.0 and whole.samples[-16000:].any()  # padding still right


def test_frames_stage_decode_work_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "one_gop.mp4"  # 100 s, 1000 frames, a single keyframe
    mf.ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x64:r=10:d=100", "-c:v", "libx264", "-preset", "ultrafast",
        "-x264-params", "keyint=100000:min-keyint=100000:scenecut=0", str(path),
    )  # fmt: skip
    info = probe(path)
    budget_frames = 150
    config = FrameConfig(num_frames=8, decode_budget_pixels=64 * 64 * budget_frames)
    frames = sample_frames(path, info, config)
    assert frames.decoded_count <= 2 * budget_frames + 2, frames.decoded_count  # first pass + re-spread
    assert frames.count >= 4 and frames.truncated  # samples spread over what the budget reached
    assert float(frames.timestamps_s[-1]) <= budget_frames / 10.0
    assert sample_frames(path, info, FrameConfig(num_frames=8)).count == 8  # the default budget: whole


# -- 5. work that a limit should stop keeps running ----------------------------------------------------


def _upload(http: httpx.Client, data: bytes, path: str = "/v1/analyze") -> httpx.Response:
    return http.post(path, files={"file": ("clip.mp4", data, "video/mp4")})


def test_sync_timeout_stops_the_analysis(tmp_path: Path) -> None:
    fake = FakeFactory()
    settings = make_settings(tmp_path, sync_timeout_s=0.5)
    with live_server(settings, fake) as url, httpx.Client(base_url=url, timeout=30) as http:
        wait_ready(http)
        response = _upload(http, b"spin")
        assert response.status_code == 504
        wait_until(lambda: fake.analyzers[0].stopped == ["cancelled"], 20)
        assert http.get("/readyz").json()["busy_workers"] == 0
        assert _upload(http, b"next").status_code == 200  # not stuck behind the abandoned one


def test_cancel_stops_a_running_job_and_metrics_show_busy_workers(tmp_path: Path) -> None:
    fake = FakeFactory()
    with live_server(make_settings(tmp_path), fake) as url, httpx.Client(base_url=url, timeout=30) as http:
        wait_ready(http)
        job = _upload(http, b"spin", "/v1/jobs").json()["id"]
        poll_job(http, job, {"running"})
        wait_until(lambda: "reelsense_busy_workers 1.0" in http.get("/metrics").text)
        assert http.delete(f"/v1/jobs/{job}").json()["status"] == "cancelled"
        wait_until(lambda: fake.analyzers[0].stopped == ["cancelled"], 20)
        wait_until(lambda: "reelsense_busy_workers 0.0" in http.get("/metrics").text)
        after = _upload(http, b"next", "/v1/jobs").json()["id"]
        assert poll_job(http, after, {"succeeded", "failed"})["status"] == "succeeded"


def test_analysis_timeout_fails_the_job(tmp_path: Path) -> None:
    fake = FakeFactory()
    settings = make_settings(tmp_path, analysis_timeout_s=0.5)
    with live_server(settings, fake) as url, httpx.Client(base_url=url, timeout=30) as http:
        wait_ready(http)
        job = _upload(http, b"spin", "/v1/jobs").json()["id"]
        failed = poll_job(http, job, {"failed", "succeeded"}, timeout_s=30)
        assert failed["status"] == "failed" and failed["error"]["code"] == "analysis_timeout"
        assert http.get("/readyz").status_code == 200


def test_stage_boundaries_raise_the_stop_reason() -> None:
    reason = MediaError(ErrorCode.CANCELLED, "cancelled by the client")
    stop: list[MediaError] = []
    seen: list[str] = []
    reporter = ProgressReporter(lambda stage, _: seen.append(stage), lambda: stop[0] if stop else None)
    reporter.stage("fetch")
    assert not reporter.stopping()
    stop.append(reason)
    assert reporter.stopping()
    with pytest.raises(MediaError) as caught:
        reporter.stage("probe")
    assert caught.value is reason and seen == ["fetch"]


SPEECH = (
    "The river runs past the old mill every morning. Children walk along the bank to school. "
    "A baker opens his shop at six and sells warm bread to the farmers. The market fills with "
    "voices, carts and the smell of coffee. In the afternoon the square is quiet again, and the "
    "dogs sleep in the shade of the big chestnut tree. When evening comes the lamps are lit one by "
    "one, and people sit outside to talk about the weather, the harvest and the news from the city."
)


def test_whisper_stops_between_segments(tmp_path: Path) -> None:
    from pipeline.config import TranscribeConfig
    from pipeline.transcribe import Transcriber

    wav = mf.speech_wav(tmp_path / "speech.wav", SPEECH, speed=120)
    audio = decode_audio(wav, probe(wav), AudioConfig())
    assert audio.duration_s > 35.0  # more than one 30 s Whisper window of speech
    transcriber = Transcriber(TranscribeConfig(), device="cpu", cache_dir=tmp_path / "cache")
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return True  # stop after the first segment

    transcript = transcriber.transcribe(audio, should_stop=should_stop)
    assert asked == [1] and len(transcript.segments) == 1
    assert transcript.segments[0].end_s < 30.0  # the second window was never decoded


# -- 9. smaller ones -----------------------------------------------------------------------------------


def test_client_disconnecting_mid_upload_is_not_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with live_server(make_settings(tmp_path), FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        port = int(url.rsplit(":", 1)[1])
        head = (
            "POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200000\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        )
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(head.encode() + b"x" * 10_000)
        wait_until(lambda: 'status="499"' in http.get("/metrics").text, 20)
        metrics = http.get("/metrics").text
        assert 'status="500"' not in metrics
        assert http.get("/readyz").status_code == 200
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert list((tmp_path / "uploads").iterdir()) == []


def test_demuxer_failure_in_probe_is_invalid_media(
    tmp_path: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import av.error

    import pipeline.probe

    video = tmp_path / "v.mp4"
    mf.write_video(video, duration_s=1.0)

    def broken_demuxer(*_args: object) -> None:
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(pipeline.probe, "_scan_video", broken_demuxer)
    with pytest.raises(MediaError) as caught:
        probe(video)
    assert caught.value.code is ErrorCode.INVALID_MEDIA


def test_empty_api_key_header_does_not_hide_a_bearer_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="key-one")
    with live_server(settings, FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        response = http.get("/v1/jobs", headers={"X-API-Key": "", "Authorization": "Bearer key-one"})
        assert response.status_code == 200


def test_long_rejected_input_is_not_echoed_whole(tmp_path: Path) -> None:
    with live_server(make_settings(tmp_path), FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        response = http.post("/v1/jobs", json={"url": "http://a.example/v.mp4", "labels": ["x" * 900_000]})
        assert response.status_code in (400, 422)
        assert len(response.content) < 2000


class _BrokenHeadAnalyzer:
    def __init__(self, config: AnalyzerConfig) -> None:
        pass

    def analyze(
        self,
        source: str,
        labels: LabelSet | None = None,
        *,
        head: str | Path | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> Prediction:
        error = MediaError(
            ErrorCode.INVALID_MODEL_SPEC, f"fusion head checkpoint {head}: head.json is missing"
        )
        return Prediction.failed(source, error)


def test_a_broken_heads_server_path_is_not_shown(tmp_path: Path) -> None:
    heads = tmp_path / "heads"
    (heads / "mine").mkdir(parents=True)
    settings = make_settings(tmp_path, heads_dir=heads)
    with live_server(settings, _BrokenHeadAnalyzer) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        response = http.post(
            "/v1/analyze", files={"file": ("a.mp4", b"x", "video/mp4")}, data={"head": "mine"}
        )
    message = response.json()["error"]["message"]
    assert str(tmp_path) not in message and "'mine'" in message


def test_start_up_removes_uploads_of_interrupted_jobs_and_prunes_old_jobs(tmp_path: Path) -> None:
    from service.jobs import JobStore

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    orphan = uploads / f"{'a' * 32}.upload"
    orphan.write_bytes(b"left by a crash")
    unrelated = uploads / "README.txt"
    unrelated.write_text("not ours")
    store = JobStore(tmp_path / "jobs.sqlite3")
    old, _ = store.create("upload:old.mp4", None, None)
    store.start(old.id, "started")
    store.finish(old.id, result={}, error=None)
    store._db.execute("UPDATE jobs SET updated_at = updated_at - 40 * 86400 WHERE id = ?", (old.id,))
    crashed, _ = store.create("upload:a.mp4", None, None)
    store.start(crashed.id, "started")
    store.close()
    settings = make_settings(tmp_path, job_retention_days=30)
    with live_server(settings, FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        wait_until(lambda: http.get(f"/v1/jobs/{old.id}").status_code == 404)
        assert http.get(f"/v1/jobs/{crashed.id}").json()["error"]["code"] == "interrupted"
    assert not orphan.exists() and unrelated.exists()


def test_settings_read_no_env_file_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.settings import Settings

    (tmp_path / ".env").write_text("REELSENSE_PORT=1234\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REELSENSE_PORT", raising=False)
    assert Settings().port == 8000
    assert Settings(_env_file=tmp_path / ".env").port == 1234  # type: ignore[call-arg]


# -- 7. cross-site requests and DNS rebinding on the no-key default -----------------------------------


def test_foreign_host_and_cross_origin_posts_are_refused(tmp_path: Path) -> None:
    fake = FakeFactory()
    with live_server(make_settings(tmp_path), fake) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        own = url.removeprefix("http://")
        rebinding = http.get("/v1/jobs", headers={"Host": f"attacker.example:{own.split(':')[1]}"})
        assert rebinding.status_code == 421 and rebinding.json()["error"]["code"] == "misdirected_request"
        files = {"file": ("clip.mp4", b"video", "video/mp4")}
        for headers in (
            {"Origin": "http://attacker.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"},
            {"Sec-Fetch-Site": "same-site", "Origin": f"http://localhost:{own.split(':')[1]}"},
        ):
            refused = http.post("/v1/jobs", files=files, headers=headers)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "cross_origin"
        assert fake.analyzers[0].calls == []  # nothing was queued
        # The service's own page, a typed-in request, and non-browser clients keep working.
        assert http.get("/").status_code == 200
        assert http.get("/v1/jobs", headers={"Host": f"localhost:{own.split(':')[1]}"}).status_code == 200
        for headers in ({"Origin": url, "Sec-Fetch-Site": "same-origin"}, {"Origin": url}, {}):
            assert http.post("/v1/jobs", files=files, headers=headers).status_code == 202
        assert http.get("/readyz").status_code == 200


def test_allowed_hosts_setting(tmp_path: Path) -> None:
    from service.origin import allowed_hosts

    assert allowed_hosts(make_settings(tmp_path)) == {"localhost", "127.0.0.1"}
    assert allowed_hosts(make_settings(tmp_path, host="0.0.0.0", api_keys="k")) is None
    named = make_settings(tmp_path, host="0.0.0.0", api_keys="k", allowed_hosts="media.example, [::1]")
    assert allowed_hosts(named) == {"media.example", "::1"}


# -- 8. keys are tenants -------------------------------------------------------------------------------


def test_jobs_belong_to_the_key_that_made_them(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="key-one,key-two", admin_api_keys="key-admin")
    one, two, admin = ({"X-API-Key": k} for k in ("key-one", "key-two", "key-admin"))
    files = {"file": ("clip.mp4", b"video", "video/mp4")}
    with live_server(settings, FakeFactory()) as url, httpx.Client(base_url=url) as http:
        wait_ready(http)
        first = http.post("/v1/jobs", files=files, data={"idempotency_key": "same"}, headers=one).json()["id"]
        assert http.get("/v1/jobs", headers=two).json()["jobs"] == []
        assert http.get(f"/v1/jobs/{first}", headers=two).status_code == 404
        assert http.delete(f"/v1/jobs/{first}", headers=two).status_code == 404
        again = http.post("/v1/jobs", files=files, data={"idempotency_key": "same"}, headers=two)
        assert again.status_code == 202 and again.json()["id"] != first  # keys are per API key
        assert http.get(f"/v1/jobs/{first}", headers=one).status_code == 200
        assert [j["id"] for j in http.get("/v1/jobs", headers=one).json()["jobs"]] == [first]
        assert {j["id"] for j in http.get("/v1/jobs", headers=admin).json()["jobs"]} == {
            first,
            again.json()["id"],
        }
        same = http.post("/v1/jobs", files=files, data={"idempotency_key": "same"}, headers=one)
        assert same.status_code == 200 and same.json()["id"] == first
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("jobs.sqlite3*"))  # the WAL too
    assert b"key-one" not in raw and b"key-two" not in raw  # key ids, never the keys
