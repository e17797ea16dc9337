"""Service load benchmark: a bounded load test of `reelsense serve` on a loopback port.

Starts the real server (real models) in a subprocess on 127.0.0.1, uploads a short clip with speech to
`POST /v1/analyze` at several concurrency levels, and reports p50/p95 latency, throughput, 5xx count,
429s (the overload answer, with Retry-After, instead of unbounded queues), and the server's memory before
(with its child processes) over 200 more requests once warm: growth should stay within a few percent.
Every request goes to loopback and the run is bounded in count.

Run: `python -m scripts.bench_service [--requests 50] [--concurrency 1,4,16] [--workers 2] [--ray]`.
Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

SPEECH = "This espresso is delicious. I love this little cafe."


def make_clip(folder: Path) -> Path:
    """A 4 s clip: a coffee photo and one spoken sentence (espeak-ng + ffmpeg)."""
    from scripts.make_samples import _ffmpeg, _save_picture, _tool

    path = folder / "clip.mp4"
    if not path.exists():
        _save_picture("coffee", folder / "coffee.png")
        subprocess.run([_tool("espeak-ng"), "-w", str(folder / "s.wav"), SPEECH], check=True)
        _ffmpeg(
            "-loop", "1", "-framerate", "10", "-i", str(folder / "coffee.png"), "-i", str(folder / "s.wav"),
            "-shortest", "-vf", "scale=320:-2,format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", str(path),
        )  # fmt: skip
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants (with --ray: Ray's daemons and replicas)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kb / 1024


def start_server(work: Path, port: int, workers: int, queue: int, on_ray: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REELSENSE_JOBS_DB": str(work / "jobs.sqlite3"),
        "REELSENSE_WORKERS": str(workers),
        "REELSENSE_QUEUE_SIZE": str(queue),
        "REELSENSE_FRAMES": "8",
        "REELSENSE_DEVICE": "cpu",
    }
    command = [sys.executable, "-m", "scripts.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if on_ray:  # Ray Serve: one analyzer replica per worker, half a CPU each so they fit on a laptop
        command += ["--ray", "--replicas", str(workers)]
        env["REELSENSE_RAY_CPUS_PER_REPLICA"] = "0.5"
        env.pop("RAY_ADDRESS", None)  # a local Ray, whose processes are the server's children
    return spawn_ready(command, env, port)


def spawn_ready(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start a `reelsense serve` on loopback `port` and wait (up to 300 s) until /readyz answers 200."""
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    server.kill()
    raise SystemExit("the server did not become ready in 300 s")


def load(base: str, clip: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    def one(_: int) -> tuple[int, float]:
        started = time.perf_counter()
        files = {"file": ("clip.mp4", clip, "video/mp4")}
        response = httpx.post(f"{base}/v1/analyze", files=files, timeout=300)
        return response.status_code, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    ok = sorted(latency for status, latency in results if status == 200)
    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": len(ok),
        "429": sum(status == 429 for status, _ in results),
        "5xx": sum(status >= 500 for status, _ in results),
        "p50_s": statistics.median(ok) if ok else None,
        "p95_s": ok[int(0.95 * (len(ok) - 1))] if ok else None,
        "ok_per_s": len(ok) / wall,
    }


def soak(base: str, clip: bytes, requests: int, concurrency: int, pid: int) -> list[tuple[int, float]]:
    """The memory phase: `requests` more uploads, the server's RSS after every 25 (after the load
    levels, so allocator pools and caches have warmed up and growth here means a leak)."""
    samples = [(0, rss_mb(pid))]
    done = 0
    while done < requests:
        step = min(25, requests - done)
        load(base, clip, step, concurrency)
        done += step
        samples.append((done, rss_mb(pid)))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=2, help="the server's analysis workers")
    parser.add_argument("--ray", action="store_true", help="serve with `--ray` (Ray Serve replicas)")
    parser.add_argument("--queue", type=int, default=8, help="the server's queue size (beyond: 429)")
    parser.add_argument(
        "--soak", type=int, default=200, help="requests of the memory phase (0: skip it); RSS every 25"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    clip = make_clip(work).read_bytes()
    port = free_port()
    server = start_server(work, port, args.workers, args.queue, args.ray)
    base = f"http://127.0.0.1:{port}"
    try:
        # Warm-up: every worker's first-call costs (class embeddings, first model calls) off the books.
        load(base, clip, 2 * args.workers, args.workers)
        levels = [load(base, clip, args.requests, int(c)) for c in args.concurrency.split(",")]
        rss = soak(base, clip, args.soak, args.workers, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results = {"levels": levels, "rss_mb_by_requests": rss, "workers": args.workers, "ray": args.ray}
    for level in levels:
        p50 = f"{level['p50_s']:.2f}" if level["p50_s"] is not None else "-"
        p95 = f"{level['p95_s']:.2f}" if level["p95_s"] is not None else "-"
        print(
            f"concurrency {level['concurrency']:3d}: {level['ok']:3d}/{level['requests']} ok, "
            f"{level['429']} x 429, {level['5xx']} x 5xx, p50 {p50} s, p95 {p95} s, "
            f"{level['ok_per_s']:.2f} ok/s"
        )
    if len(rss) > 1:
        (_, before), (count, after) = rss[0], rss[-1]
        curve = ", ".join(f"{n}: {mb:.0f}" for n, mb in rss)
        print(f"server RSS (MB) after n soak requests: {curve}")
        print(f"growth over {count} requests: {(after - before) / before * 100:+.1f} %")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
