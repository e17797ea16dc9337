"""Batch benchmark on N generated clips with speech (15-60 s; espeak-ng over a picture), in one run.

Default: `reelsense batch` (Ray engine, defaults, CPU) against the naive sequential script
(`scripts/naive_baseline.py`: the obvious pipeline on the same offline models), each a fresh process timed
from its start to its last result, model loading included: seconds of media per wall second for each and
their ratio (issue 13's goal: >= 1.5 for 20+ clips on this 2-core machine, >= 1.8 for 100), and each
process tree's peak memory. `--executors` instead compares the in-process executor with the Ray engine
inside this process (videos/s, media-s per wall-s, the per-stage time split); `--long` adds one 25-minute
video through the Ray engine there.

Run: `python -m scripts.bench_batch [--clips 20] [--executors [--long]] [--out results.json]`. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

SENTENCES = [
    "My cat loves chasing the red ball around the living room, and it makes me laugh every day.",
    "This recipe takes twenty minutes: pasta, garlic, tomatoes and a little fresh basil on top.",
    "The match was incredible, our team scored twice in the final minutes and won the cup.",
    "I am really disappointed with this phone, the battery dies before lunch and the screen cracked.",
    "We hiked up the mountain at sunrise and the view over the lake was absolutely stunning.",
]
PICTURES = ["chelsea", "coffee", "rocket", "stereo_motorcycle", "astronaut"]


def make_clips(folder: Path, count: int) -> list[Path]:
    """`count` clips of 15 to 60 s, each a picture with a voice speaking throughout."""
    from scripts.make_samples import _ffmpeg, _save_picture, _tool

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        seconds = 15 + (index * 45) // max(1, count - 1)
        path = folder / f"clip{index:02d}_{seconds}s.mp4"
        paths.append(path)
        if path.exists():
            continue
        picture = folder / f"{PICTURES[index % len(PICTURES)]}.png"
        if not picture.exists():
            _save_picture(PICTURES[index % len(PICTURES)], picture)
        speech = folder / f"speech{index:02d}.wav"
        text = " ".join(SENTENCES[(index + k) % len(SENTENCES)] for k in range(1 + seconds // 6))
        subprocess.run([_tool("espeak-ng"), "-s", "160", "-w", str(speech), text], check=True)
        _ffmpeg(
            "-loop", "1", "-framerate", "10", "-i", str(picture), "-i", str(speech), "-t", str(seconds),
            "-vf", "scale=480:-2,format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", str(path),
        )  # fmt: skip
    return paths


def make_long_clip(folder: Path, minutes: int) -> Path:
    from scripts.make_samples import _ffmpeg

    path = folder / f"long_{minutes}min.mp4"
    if not path.exists():
        _ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
            "-f", "lavfi", "-i", "sine=f=220:sample_rate=16000",
            "-t", str(minutes * 60), "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
            "-b:a", "32k", str(path),
        )  # fmt: skip
    return path


class TreeMemory:
    """Samples the resident memory of this process and all its descendants (Ray workers included)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, tree_rss_mb(os.getpid()))


def tree_rss_mb(root: int) -> float:
    """Sum of VmRSS over `root` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children[int(fields.get("PPid", "0").strip())].append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024 if "VmRSS" in fields else 0.0
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def run_executor(executor: Any, clips: list[Path]) -> dict[str, Any]:
    from pipeline.executor import WorkItem

    items = [WorkItem(str(p), str(p)) for p in clips]
    stages: dict[str, list[float]] = defaultdict(list)
    media_s = failed = 0.0
    with TreeMemory() as memory:
        started = time.perf_counter()
        for _, prediction in executor.run(items):
            failed += prediction.status != "ok"
            media_s += prediction.media.duration_s if prediction.media else 0.0
            for stage, ms in prediction.timings_ms.items():
                stages[stage].append(ms)
        wall = time.perf_counter() - started
    return {
        "videos": len(items),
        "failed": int(failed),
        "wall_s": wall,
        "videos_per_s": len(items) / wall,
        "media_s_per_wall_s": media_s / wall,
        "peak_tree_mb": memory.peak_mb,
        "stage_median_ms": {stage: statistics.median(values) for stage, values in stages.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20, help="number of generated clips (15-60 s each)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the clips (reused if present)")
    parser.add_argument("--workers", type=int, default=None, help="Ray clip actors (default: CPUs)")
    parser.add_argument(
        "--executors", action="store_true", help="in-process executor against Ray, inside this process"
    )
    parser.add_argument("--long", action="store_true", help="with --executors: one 25-minute video too")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    clips = make_clips(work, args.clips)
    if args.executors:
        results = compare(clips, args.workers, make_long_clip(work, 25) if args.long else None)
        print(report(results))
    else:
        results = versus_naive(clips, work, args.workers)
        print(report_versus_naive(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def timed_process(argv: list[str]) -> tuple[float, float, str]:
    """Run `argv` as a fresh process: (wall seconds from its start to its exit, peak MB of its process
    tree, its stdout). Raises with its stderr's tail when it fails."""
    with TreeMemory() as memory:
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, memory.peak_mb, done.stdout


def versus_naive(clips: list[Path], work: Path, workers: int | None) -> dict[str, Any]:
    """The naive script and `reelsense batch` on the same clips, each timed from its process start."""
    from models.labels import default_taxonomy
    from pipeline.probe import probe

    media_s = sum(probe(clip).duration_s for clip in clips)
    labels = ",".join(default_taxonomy().names)  # the same label set reelsense uses by default
    paths = [str(clip) for clip in clips]
    results: dict[str, Any] = {"videos": len(clips), "media_s": media_s}
    wall, peak, stdout = timed_process(
        [sys.executable, "-m", "scripts.naive_baseline", *paths, "--labels", labels]
    )
    rows = [json.loads(line) for line in stdout.splitlines()]
    results["naive"] = _throughput(wall, peak, media_s, sum("error" in row for row in rows))
    out = work / "bench-batch-results.jsonl"
    out.unlink(missing_ok=True)  # a resumed batch would skip every clip
    command = [sys.executable, "-m", "scripts.cli", "batch", *paths, "--out", str(out), "--no-progress"]
    command += ["--device", "cpu", *(["--workers", str(workers)] if workers else [])]
    wall, peak, _ = timed_process(command)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    results["reelsense"] = _throughput(wall, peak, media_s, sum(row.get("status") != "ok" for row in rows))
    results["ratio"] = results["reelsense"]["media_s_per_wall_s"] / results["naive"]["media_s_per_wall_s"]
    return results


def _throughput(wall_s: float, peak_mb: float, media_s: float, failed: int) -> dict[str, Any]:
    return {
        "wall_s": wall_s,
        "media_s_per_wall_s": media_s / wall_s,
        "peak_tree_mb": peak_mb,
        "failed": failed,
    }


def report_versus_naive(results: dict[str, Any]) -> str:
    lines = [
        f"load average {os.getloadavg()[0]:.2f} (other processes skew timings)",
        f"{results['videos']} clips, {results['media_s']:.0f} s of media; each timed from process start to "
        "last result",
    ]
    for name in ("naive", "reelsense"):
        r = results[name]
        lines.append(
            f"{name:10} {r['wall_s']:7.1f} s ({r['failed']} failed): {r['media_s_per_wall_s']:.2f} "
            f"media-s per wall-s, peak memory (process tree) {r['peak_tree_mb']:.0f} MB"
        )
    ratio = results["ratio"]
    lines.append(f"ratio reelsense / naive: {ratio:.2f} (goal >= 1.5: {'PASS' if ratio >= 1.5 else 'FAIL'})")
    return "\n".join(lines)


def compare(clips: list[Path], workers: int | None, long_clip: Path | None) -> dict[str, Any]:
    from pipeline.analyze import AnalyzerConfig
    from pipeline.executor import InProcessExecutor
    from pipeline.ray_engine import EngineConfig, RayExecutor

    config = AnalyzerConfig(device="cpu")
    sequential = InProcessExecutor(config)
    results: dict[str, Any] = {"in_process": run_executor(sequential, clips)}
    del sequential
    started = time.perf_counter()
    engine = RayExecutor(config, EngineConfig(workers=workers))
    results["ray_startup_s"] = time.perf_counter() - started
    try:
        run_executor(engine, clips[:2])  # warm every worker once (first model calls)
        results["ray"] = run_executor(engine, clips)
        if long_clip is not None:
            results["ray_long_25min"] = run_executor(engine, [long_clip])
    finally:
        engine.close()
    results["speedup"] = results["ray"]["videos_per_s"] / results["in_process"]["videos_per_s"]
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"load average {os.getloadavg()[0]:.2f} (other processes skew timings)"]
    for name in ("in_process", "ray", "ray_long_25min"):
        if name not in results:
            continue
        r = results[name]
        lines.append(
            f"{name:15} {r['videos']:3d} videos ({r['failed']} failed) in {r['wall_s']:7.1f} s: "
            f"{r['videos_per_s']:.3f} videos/s, {r['media_s_per_wall_s']:.2f} s of media per s, "
            f"peak memory (process tree) {r['peak_tree_mb']:.0f} MB"
        )
        split = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["stage_median_ms"].items()))
        lines.append(f"{'':15} median ms per stage: {split}")
    speedup = results["speedup"]
    lines.append(f"Ray startup {results['ray_startup_s']:.1f} s (not in the throughput)")
    lines.append(
        f"speed-up Ray / in-process: {speedup:.2f}x (goal >= 1.7: {'PASS' if speedup >= 1.7 else 'FAIL'})"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
