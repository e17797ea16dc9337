"""Replay issue 14's attacks against a running `reelsense serve` on loopback, one line per attack.

Starts the real server (real models, CPU, one worker) in a subprocess on 127.0.0.1 with limits scaled
down so that small bombs are over them, plus two loopback helpers (a media origin and a webhook receiver).
For each attack it prints the outcome (status and error code, or what the helper saw), the server's peak
RSS while it ran, its RSS afterwards against where it started, and whether the service is still healthy
(`/readyz` ready and the next request answered). Every connection goes to 127.0.0.1.

Run: `python -m scripts.bench_attacks [--keep]`. Not a test (tests/test_hardening.py is).
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from scripts.bench_service import free_port, make_clip, rss_mb, spawn_ready

KEY, OTHER_KEY = "key-one", "key-two"
LIMITS = {  # scaled down: each bomb below is over one of these
    "REELSENSE_MAX_PIXELS": str(2_000_000),
    "REELSENSE_MAX_DURATION_S": "60",
    "REELSENSE_SYNC_TIMEOUT_S": "120",
    "REELSENSE_ANALYSIS_TIMEOUT_S": "120",
    "REELSENSE_MAX_DOWNLOAD_MB": "1",
    "REELSENSE_DECODE_BUDGET_MPX": "20",
    "REELSENSE_WEBHOOK_TIMEOUT_S": "3",
    "REELSENSE_WEBHOOK_RETRIES": "0",
    "REELSENSE_ALLOW_NETWORKS": "127.0.0.0/8",
    "REELSENSE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    "REELSENSE_API_KEYS": f"{KEY},{OTHER_KEY}",
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def make_media(folder: Path) -> dict[str, Path]:
    """Every hostile file, small, made here."""
    media = {"clip": make_clip(folder)}
    secret = folder / "secret.ts"
    ffmpeg("-f", "lavfi", "-i", "sine=d=3", "-c:a", "aac", str(secret))
    media["secret"] = secret
    media["bomb"] = folder / "bomb.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:s=4000x4000:d=0.2:r=25", "-c:v", "libx264", "-preset",
           "ultrafast", "-x264-params", "ref=16", "-pix_fmt", "yuv420p", str(media["bomb"]))  # fmt: skip
    parts = []
    for seconds, rate in ((5, "160k"), (175, "8k")):
        part = folder / f"part{rate}.mp3"
        ffmpeg("-f", "lavfi", "-i", f"sine=d={seconds}", "-ar", "16000", "-ac", "1", "-c:a",
               "libmp3lame", "-b:a", rate, "-write_xing", "0", "-id3v2_version", "0", "-write_id3v1", "0",
               str(part))  # fmt: skip
        parts.append(part.read_bytes())
    media["lying_mp3"] = folder / "lying.mp3"
    media["lying_mp3"].write_bytes(b"".join(parts))
    media["one_gop"] = folder / "one_gop.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=50", "-c:v", "libx264", "-preset", "ultrafast",
           "-x264-params", "keyint=100000:min-keyint=100000:scenecut=0", str(media["one_gop"]))  # fmt: skip
    media["long_speech"] = folder / "long.wav"
    text = " ".join(["The river runs past the old mill and the children walk to school."] * 16)
    subprocess.run(["espeak-ng", "-w", str(media["long_speech"]), text], check=True)
    return media


class Helper(ThreadingHTTPServer):
    """Loopback origin + webhook receiver: GET /gzip2 (stacked gzip), POST /big (64 MiB reply),
    POST /drip (headers a byte at a time). Records bytes sent and posts received."""

    daemon_threads = True
    sent = 0
    posts = 0
    drip_cut = False  # the dribbled-to connection was closed by the client
    body = b""  # set in main: a few KB that inflate to 128 MiB

    def server_bind(self) -> None:
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class HelperHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Helper

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        headers = {"Content-Type": "video/mp4", "Content-Encoding": "gzip, gzip"}
        for name, value in {**headers, "Content-Length": str(len(self.server.body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.server.body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts += 1
        try:
            if self.path == "/big":
                self.send_response(200)
                self.send_header("Content-Length", str(64 * 1024 * 1024))
                self.end_headers()
                for _ in range(1024):
                    self.wfile.write(b"x" * 65536)
                    self.server.sent += 65536
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(600):
                    time.sleep(0.2)
                    self.wfile.write(b"a")
                    self.wfile.flush()
        except OSError:
            if self.path != "/big":
                self.server.drip_cut = True


def start_server(work: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **LIMITS, "REELSENSE_JOBS_DB": str(work / "jobs.sqlite3"),
           "REELSENSE_UPLOAD_DIR": str(work / "uploads"), "REELSENSE_FRAMES": "8",
           "REELSENSE_DEVICE": "cpu"}  # fmt: skip
    command = [sys.executable, "-m", "scripts.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return spawn_ready(command, env, port)


class Peak:
    """Samples the server's RSS in the background while an attack runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, rss_mb(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def outcome(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code)
    if not isinstance(body, dict):
        return str(response.status_code)
    code = (body.get("error") or {}).get("code")
    timings = body.get("timings_ms") or {}
    extra = f" (frames stage {timings['frames']:.0f} ms)" if "frames" in timings else ""
    return f"{response.status_code} {code or body.get('status', '')}{extra}".strip()


Attack = Callable[[httpx.Client], str]


def playlist(segment: str) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\n{segment}\n#EXT-X-ENDLIST\n".encode()


def upload(name: str, data: bytes) -> Attack:
    return lambda http: outcome(http.post("/v1/analyze", files={"file": (name, data)}))


def request(method: str, path: str, **kwargs: Any) -> Attack:
    return lambda http: outcome(http.request(method, path, **kwargs))


def webhook(helper: Helper, clip: bytes, path: str) -> Attack:
    def run(http: httpx.Client) -> str:
        before = helper.posts
        hook = f"http://127.0.0.1:{helper.server_port}{path}"
        job = http.post("/v1/jobs", files={"file": ("c.mp4", clip)}, data={"webhook_url": hook}).json()["id"]
        deadline = time.monotonic() + 300
        while http.get(f"/v1/jobs/{job}").json()["status"] not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                return "job did not finish"
            time.sleep(0.5)
        while helper.posts == before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4)  # the delivery runs into its deadline (WEBHOOK_TIMEOUT_S=3)
        if path == "/big":
            return f"delivered; the receiver wrote {helper.sent // 1024} KiB of its 64 MiB reply"
        return f"dribbling receiver cut by the deadline: {helper.drip_cut}"

    return run


def cancel_stops_the_work(speech: bytes) -> Attack:
    """A long job cancelled while Whisper runs: the worker must be free again soon after."""

    def run(http: httpx.Client) -> str:
        job = http.post("/v1/jobs", files={"file": ("l.wav", speech)}).json()["id"]
        deadline = time.monotonic() + 120
        while http.get(f"/v1/jobs/{job}").json()["stage"] != "transcribe":
            if time.monotonic() > deadline:
                return "never reached transcribe"
            time.sleep(0.1)
        cancelled_at = time.monotonic()
        status = http.delete(f"/v1/jobs/{job}").json()["status"]
        while http.get("/readyz").json().get("busy_workers", 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        freed = not http.get("/readyz").json().get("busy_workers", 0)
        return f"{status}; worker free {time.monotonic() - cancelled_at:.1f} s later: {freed}"

    return run


def disconnect(port: int) -> Attack:
    def run(http: httpx.Client) -> str:
        head = (
            f"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n"
            "Content-Length: 900000\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        )
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(head.encode() + b"x" * 10_000)
        time.sleep(1)
        text = http.get("/metrics").text
        counted, errors = 'status="499"' in text, 'status="500"' in text
        return f"499 counted: {counted}; any 500: {errors}"

    return run


def tenants(http: httpx.Client) -> str:
    form = {"files": {"file": ("c.mp4", b"bad")}, "data": {"idempotency_key": "k"}}
    job = http.post("/v1/jobs", **form).json()["id"]  # type: ignore[arg-type]
    other = {"X-API-Key": OTHER_KEY}
    seen = http.get(f"/v1/jobs/{job}", headers=other).status_code
    listed = len(http.get("/v1/jobs", headers=other).json()["jobs"])
    again = http.post("/v1/jobs", headers=other, **form).json()["id"]  # type: ignore[arg-type]
    return f"other key: GET {seen}, lists {listed}, same idempotency key gives its own job: {again != job}"


def long_label(origin: str) -> Attack:
    def run(http: httpx.Client) -> str:
        response = http.post("/v1/jobs", json={"url": f"{origin}/v.mp4", "labels": ["x" * 900_000]})
        return f"{outcome(response)}, reply {len(response.content)} bytes"

    return run


def attacks(media: dict[str, Path], helper: Helper, port: int) -> list[tuple[str, Attack]]:
    origin = f"http://127.0.0.1:{helper.server_port}"
    secret, clip = media["secret"], media["clip"].read_bytes()
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {KEY}"}
    return [
        ("1 playlist upload, absolute path", upload("l.m3u8", playlist(str(secret)))),
        ("1 playlist upload, file:// URL", upload("l.m3u8", playlist(secret.as_uri()))),
        ("1 ffconcat upload", upload("c.txt", f"ffconcat version 1.0\nfile {secret}\n".encode())),
        ("2 pixel bomb 4000x4000 refs=16", upload("b.mp4", media["bomb"].read_bytes())),
        (
            "3 gzip,gzip download (128 MiB inside)",
            request("POST", "/v1/analyze", json={"url": f"{origin}/g"}),
        ),
        ("4 webhook with a 64 MiB reply", webhook(helper, clip, "/big")),
        ("4 webhook that dribbles", webhook(helper, clip, "/drip")),
        ("5 cancel mid-Whisper stops the work", cancel_stops_the_work(media["long_speech"].read_bytes())),
        ("6 mp3 whose header lies (3 min)", upload("m.mp3", media["lying_mp3"].read_bytes())),
        ("6 one-keyframe video, decode budget", upload("g.mp4", media["one_gop"].read_bytes())),
        ("7 foreign Host", request("GET", "/v1/jobs", headers={"Host": "evil.example"})),
        (
            "7 cross-origin POST",
            request("POST", "/v1/jobs", json={}, headers={"Origin": "http://evil.example"}),
        ),
        ("8 second key vs first key's job", tenants),
        ("9 disconnect mid-upload", disconnect(port)),
        ("9 empty X-API-Key + Bearer", request("GET", "/v1/jobs", headers=bearer)),
        ("9 1 MB label", long_label(origin)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reelsense-attacks-"))
    media = make_media(work)
    helper = Helper(("127.0.0.1", 0), HelperHandler)
    helper.body = gzip.compress(gzip.compress(bytes(128 * 1024 * 1024), 9), 9)
    threading.Thread(target=helper.serve_forever, daemon=True).start()
    port = free_port()
    server = start_server(work, port)
    base = f"http://127.0.0.1:{port}"
    clip = media["clip"].read_bytes()
    try:
        with httpx.Client(base_url=base, timeout=300, headers={"X-API-Key": KEY}) as http:
            # Warm up before the baseline: a clip, and long speech (Whisper's working set for long audio).
            http.post("/v1/analyze", files={"file": ("c.mp4", clip)})
            http.post("/v1/analyze", files={"file": ("l.wav", media["long_speech"].read_bytes())})
            start = rss_mb(server.pid)
            print(f"server pid {server.pid}, RSS at start {start:.0f} MB")
            for name, attack in attacks(media, helper, port):
                peak = Peak(server.pid)
                try:
                    result = attack(http)
                except Exception as exc:  # report and go on: one attack must not hide the others
                    result = f"script error: {type(exc).__name__}: {exc}"
                top = peak.stop()
                ready = http.get("/readyz").status_code == 200
                following = http.post("/v1/analyze", files={"file": ("c.mp4", clip)}).status_code
                now = rss_mb(server.pid)
                change = (now - start) / start
                print(f"{name:<40} | {result:<60} | peak {top:6.0f} MB | after {now:6.0f} MB "
                      f"({change:+.0%}) | ready {ready} | next {following}", flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
        helper.shutdown()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
