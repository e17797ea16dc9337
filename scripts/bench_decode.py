"""Decode benchmark: our frame stage against the raw backend call, and its memory on short vs long video.

Timing: for each clip x backend x N, the median of `--repeats` runs of OUR stage (probe + sample_frames to
224x224) and of the RAW call a user would write for the same frames (decord: one-thread VideoReader +
get_batch at native size; PyAV: seek to each target, decode to the first frame at/after it, rgb24 at
native size). Memory: our stage (N=16) on a 30 s and a long clip, each in a fresh child process, peak
RSS (VmHWM, else ru_maxrss) absolute and above the child's after-import baseline.

    .venv/bin/python -m scripts.bench_decode [--quick] [--work DIR] [--out results.json]

Verdicts are printed against the goals; the exit status is 0 whatever they are (this is not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from pipeline.config import Backend, FrameConfig
from pipeline.frames import sample_frames, sample_times
from pipeline.probe import probe

RATIO_GOAL = 1.1  # ours / raw time
MEMORY_GOAL = 1.2  # long-clip / short-clip memory of our stage
MEMORY_FRAMES = 16  # N for the memory comparison
BACKENDS: tuple[Backend, ...] = ("pyav", "decord")
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Clip:
    name: str
    width: int
    height: int
    duration_s: int
    fps: int
    gop: int  # keyframe interval in frames
    preset: str  # x264 preset: veryfast for the timed clips, ultrafast for the long memory clips
    noise: int  # ffmpeg temporal noise strength: 8 gives ~10 Mbps at 1080p30, like a phone recording


@dataclass(frozen=True)
class TimingRow:
    clip: str
    backend: str
    num_frames: int
    ours_ms: float  # median
    raw_ms: float  # median
    ratio: float  # ours / raw
    decoded_count: int  # Frames.decoded_count of our stage
    raw_decoded: int  # frames the raw call decoded (PyAV) or requested (decord)
    passed: bool


@dataclass(frozen=True)
class MemoryRun:
    clip: str
    baseline_mb: float  # peak RSS of the child after its imports, before the stage
    peak_mb: float  # peak RSS of the child after the stage
    delta_mb: float  # what the stage added
    stage_s: float


@dataclass(frozen=True)
class MemoryRow:
    backend: str
    short: MemoryRun
    long: MemoryRun
    peak_ratio: float  # long / short
    delta_ratio: float  # long / short
    passed: bool  # delta_ratio within MEMORY_GOAL


def timed_clips(quick: bool) -> list[Clip]:
    sizes = [(1280, 720)] if quick else [(1280, 720), (1920, 1080)]
    return [Clip(f"{h}p_g{gop}", w, h, 20, 30, gop, "veryfast", 8) for w, h in sizes for gop in (15, 300)]


def memory_clips(quick: bool) -> tuple[Clip, Clip]:
    long_s = 5 * 60 if quick else 25 * 60
    short = Clip("mem_30s", 320, 180, 30, 25, 50, "ultrafast", 0)
    return short, Clip(f"mem_{long_s // 60}min", 320, 180, long_s, 25, 50, "ultrafast", 0)


def make_clip(clip: Clip, work: Path) -> Path:
    """Encode `clip` into `work` with ffmpeg, or reuse the file a previous run left there."""
    path = work / f"{clip.name}.mp4"
    if path.is_file() and path.stat().st_size > 0:
        return path
    unfinished = work / f"{clip.name}.partial.mp4"
    source = f"testsrc2=size={clip.width}x{clip.height}:rate={clip.fps}:duration={clip.duration_s}"
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
    if clip.noise:
        command += ["-vf", f"noise=alls={clip.noise}:allf=t"]
    command += ["-c:v", "libx264", "-preset", clip.preset, "-g", str(clip.gop), "-sc_threshold", "0"]
    command += ["-pix_fmt", "yuv420p", "-an", str(unfinished)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    unfinished.replace(path)  # atomic: an interrupted run never leaves a half file to be reused
    print(f"  made {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def run_ours(path: Path, num_frames: int, backend: Backend) -> int:
    """Our frame stage; returns Frames.decoded_count."""
    info = probe(path)
    frames = sample_frames(path, info, FrameConfig(num_frames=num_frames, backend=backend))
    return frames.decoded_count


def raw_decord(path: Path, targets_s: npt.NDArray[np.float64]) -> int:
    """decord as documented: nearest frame index per target time, one get_batch at native size."""
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    indices = np.clip(np.rint(targets_s * reader.get_avg_fps()), 0, len(reader) - 1).astype(int)
    reader.get_batch(indices.tolist()).asnumpy()
    return len(indices)


def raw_pyav(path: Path, targets_s: npt.NDArray[np.float64]) -> int:
    """PyAV's plain idiom: seek before each target, decode to the first frame at/after it, native rgb24."""
    decoded = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        start = stream.start_time or 0
        for target in targets_s:
            pts = start + int(float(target) / stream.time_base)
            container.seek(pts, stream=stream, backward=True)
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts is None or frame.pts >= pts:
                    frame.to_ndarray(format="rgb24")
                    break
    return decoded


def median_ms(calls: Sequence[Callable[[], int]], repeats: int) -> list[tuple[float, int]]:
    """Median wall time in ms of each call over `repeats` rounds, and what its last run returned.

    The calls alternate within a round, so load from other processes falls on both sides alike.
    """
    times: list[list[float]] = [[] for _ in calls]
    results = [0 for _ in calls]
    for _ in range(repeats):
        for index, call in enumerate(calls):
            started = time.perf_counter()
            results[index] = call()
            times[index].append((time.perf_counter() - started) * 1000)
    return [(statistics.median(t), r) for t, r in zip(times, results, strict=True)]


def bench_clip(path: Path, name: str, counts: Sequence[int], repeats: int) -> list[TimingRow]:
    path.read_bytes()  # warm the page cache so the first timed run does not pay for the disk
    info = probe(path)
    assert info.video is not None
    rows: list[TimingRow] = []
    for backend in BACKENDS:
        raw = raw_pyav if backend == "pyav" else raw_decord
        for n in counts:
            targets = sample_times(info.video.duration_s, FrameConfig(num_frames=n))
            calls = [partial(run_ours, path, n, backend), partial(raw, path, targets)]
            (ours_ms, decoded), (raw_ms, raw_decoded) = median_ms(calls, repeats)
            ratio = ours_ms / raw_ms
            rows.append(
                TimingRow(name, backend, n, ours_ms, raw_ms, ratio, decoded, raw_decoded, ratio <= RATIO_GOAL)
            )
            print(f"  {name} {backend} N={n}: ours {ours_ms:.0f} ms, raw {raw_ms:.0f} ms", flush=True)
    return rows


def peak_rss_mb() -> float:
    """This process's peak RSS in MB.

    ru_maxrss alone misleads in a child: Linux carries the parent's peak into it across fork/exec, so a
    child started after the parent decoded 1080p frames reports the parent's peak. /proc's VmHWM is the
    peak of this process's own memory; ru_maxrss is the fallback where /proc is absent (macOS: bytes).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def memory_child(path: str, backend: Backend) -> None:
    """In a fresh process: import everything, note the baseline, run our stage, print the peak as JSON."""
    import pipeline.decode_pyav  # noqa: F401  (the backends import lazily: keep imports out of the delta)

    if backend == "decord":
        import decord  # noqa: F401
    baseline = peak_rss_mb()
    started = time.perf_counter()
    run_ours(Path(path), MEMORY_FRAMES, backend)
    elapsed = time.perf_counter() - started
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_rss_mb(), "stage_s": elapsed}))


def measure_memory(path: Path, backend: Backend) -> MemoryRun:
    command = [sys.executable, "-m", "scripts.bench_decode", "--memory-child", str(path)]
    command += ["--backend", backend]
    done = subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return MemoryRun(
        path.stem, got["baseline_mb"], got["peak_mb"], got["peak_mb"] - got["baseline_mb"], got["stage_s"]
    )


def bench_memory(short: Path, long: Path) -> list[MemoryRow]:
    rows: list[MemoryRow] = []
    for backend in BACKENDS:
        s, lg = measure_memory(short, backend), measure_memory(long, backend)
        delta_ratio = lg.delta_mb / s.delta_mb if s.delta_mb > 0 else float("inf")
        rows.append(
            MemoryRow(backend, s, lg, lg.peak_mb / s.peak_mb, delta_ratio, delta_ratio <= MEMORY_GOAL)
        )
    return rows


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table: columns padded to their widest cell."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def print_report(timing: list[TimingRow], memory: list[MemoryRow]) -> None:
    verdict = {True: "PASS", False: "FAIL"}
    print(f"\nTiming (median ms; goal ours/raw <= {RATIO_GOAL})")
    headers = ["clip", "backend", "N", "ours_ms", "raw_ms", "ratio", "decoded", "raw_decoded", "goal"]
    cells = [
        [r.clip, r.backend, str(r.num_frames), f"{r.ours_ms:.0f}", f"{r.raw_ms:.0f}", f"{r.ratio:.2f}",
         str(r.decoded_count), str(r.raw_decoded), verdict[r.passed]]
        for r in timing
    ]  # fmt: skip
    print(table(headers, cells))
    print(f"\nMemory of our stage, N={MEMORY_FRAMES} (MB; goal long/short delta <= {MEMORY_GOAL})")
    headers = ["backend", "short_peak", "long_peak", "short_delta", "long_delta", "peak_x", "delta_x", "goal"]
    cells = [
        [m.backend, f"{m.short.peak_mb:.1f}", f"{m.long.peak_mb:.1f}", f"{m.short.delta_mb:.1f}",
         f"{m.long.delta_mb:.1f}", f"{m.peak_ratio:.2f}", f"{m.delta_ratio:.2f}", verdict[m.passed]]
        for m in memory
    ]  # fmt: skip
    print(table(headers, cells))
    if memory:
        stage = ", ".join(f"{m.backend} {m.short.stage_s:.2f} / {m.long.stage_s:.2f} s" for m in memory)
        print(f"({memory[0].short.clip} vs {memory[0].long.clip}; stage time short / long: {stage})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, help="directory for the generated clips (reused if present)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 720p only, N=16, 1 repeat, 5-min long clip"
    )
    parser.add_argument("--memory-child", metavar="PATH", help="internal: measure one memory run on PATH")
    parser.add_argument("--backend", choices=BACKENDS, default="pyav", help="internal: --memory-child's")
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, work: Path) -> None:
    started = time.perf_counter()
    counts, repeats = ((16,), 1) if args.quick else ((8, 16, 32), args.repeats)
    print(f"clips in {work}; load average {os.getloadavg()[0]:.2f}", flush=True)
    timed = [(clip.name, make_clip(clip, work)) for clip in timed_clips(args.quick)]
    short, long = (make_clip(clip, work) for clip in memory_clips(args.quick))
    memory = bench_memory(short, long)  # first, while this process is still small (see peak_rss_mb)
    timing = [row for name, path in timed for row in bench_clip(path, name, counts, repeats)]
    print_report(timing, memory)
    elapsed = time.perf_counter() - started
    load = os.getloadavg()[0]
    print(f"\ntotal {elapsed:.0f} s; load average {load:.2f} (other processes skew the timings)")
    if args.out:
        results = {
            "quick": args.quick,
            "repeats": repeats,
            "ratio_goal": RATIO_GOAL,
            "memory_goal": MEMORY_GOAL,
            "timing": [asdict(r) for r in timing],
            "memory": [asdict(m) for m in memory],
            "elapsed_s": elapsed,
            "load_average": load,
        }
        args.out.write_text(json.dumps(results, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.backend)
        return
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        bench(args, args.work)
        return
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as tmp:
        bench(args, Path(tmp))


if __name__ == "__main__":
    main()
