"""Analysis benchmark: is the concurrent frames/audio design worth it, and what does a video cost?

For a 30 s clip with speech (made here with espeak-ng over a panning picture), warm models:
- end-to-end `encode_file` + head, as a ratio to the slowest single path (goal <= 1.15): the two paths
  overlap, so the total should cost little more than the longer one;
- the same stages run one after another, and the concurrent speed-up over that;
- cold start (model loading + the first video) and peak memory (VmHWM) of this process.

Run: `python -m scripts.bench_analyze [--repeats 3] [--seconds 30] [--out results.json]`. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SPEECH = (
    "Welcome back to the kitchen. Today I am making fresh pasta with a rich tomato sauce. "
    "First we knead the dough for ten minutes, then we let it rest. The sauce needs garlic, basil "
    "and good olive oil. Honestly, this is the most delicious recipe I know, and my family loves it. "
)


def make_clip(folder: Path, seconds: float) -> Path:
    """A picture slowly zooming while a voice talks for about `seconds` (espeak-ng + ffmpeg)."""
    path = folder / f"talk_{int(seconds)}s.mp4"
    if path.exists():
        return path
    from scripts.make_samples import _ffmpeg, _save_picture, _tool

    speech = folder / "speech.wav"
    picture = folder / "coffee.png"
    _save_picture("coffee", picture)
    text = SPEECH * max(1, round(seconds / 17))  # about 17 s of speech per repetition at 150 wpm
    subprocess.run([_tool("espeak-ng"), "-s", "150", "-w", str(speech), text], check=True)
    _ffmpeg(
        "-loop", "1", "-framerate", "25", "-i", str(picture), "-i", str(speech), "-t", str(seconds),
        "-vf", "zoompan=z='min(zoom+0.0005,1.3)':d=1:s=640x426:fps=25,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB; 0.0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def median_ms(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(clip: Path, repeats: int) -> dict[str, float]:
    from pipeline.analyze import Analyzer, AnalyzerConfig
    from pipeline.probe import probe

    started = time.perf_counter()
    analyzer = Analyzer(AnalyzerConfig(device="cpu"))
    load_ms = (time.perf_counter() - started) * 1000
    first = analyzer.analyze(str(clip))
    cold_ms = (time.perf_counter() - started) * 1000
    assert first.status == "ok", first.error
    info = probe(clip)
    frames_ms = median_ms(lambda: analyzer.encode_frames(clip, info), repeats)
    audio_ms = median_ms(lambda: analyzer.encode_audio(clip, info), repeats)
    end_to_end_ms = median_ms(lambda: analyzer.analyze_file(clip, source=str(clip)), repeats)

    def one_after_another() -> None:
        analyzer.encode_frames(clip, probe(clip))
        analyzer.encode_audio(clip, info)

    sequential_ms = median_ms(one_after_another, repeats)
    return {
        "duration_s": info.duration_s,
        "load_ms": load_ms,
        "cold_first_video_ms": cold_ms,
        "frames_path_ms": frames_ms,
        "audio_path_ms": audio_ms,
        "end_to_end_ms": end_to_end_ms,
        "sequential_ms": sequential_ms,
        "ratio_to_slowest_path": end_to_end_ms / max(frames_ms, audio_ms),
        "speedup_over_sequential": sequential_ms / end_to_end_ms,
        "peak_rss_mb": peak_rss_mb(),
    }


def report(results: dict[str, float]) -> str:
    ratio = results["ratio_to_slowest_path"]
    return "\n".join(
        [
            f"clip {results['duration_s']:.1f} s with speech; warm medians; "
            f"load average {os.getloadavg()[0]:.2f} (other processes skew timings)",
            f"  frames path alone   {results['frames_path_ms']:8.0f} ms",
            f"  audio path alone    {results['audio_path_ms']:8.0f} ms",
            f"  end to end          {results['end_to_end_ms']:8.0f} ms   "
            f"ratio to slowest path {ratio:.2f} (goal <= 1.15: {'PASS' if ratio <= 1.15 else 'FAIL'})",
            f"  one after another   {results['sequential_ms']:8.0f} ms   "
            f"concurrent speed-up {results['speedup_over_sequential']:.2f}x",
            f"  cold start          {results['load_ms']:8.0f} ms loading models, "
            f"{results['cold_first_video_ms']:.0f} ms to the first result",
            f"  peak memory         {results['peak_rss_mb']:8.0f} MB",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the generated clip")
    parser.add_argument("--work", type=Path, default=None, help="folder for the clip (reused if present)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    work.mkdir(parents=True, exist_ok=True)
    results = run(make_clip(work, args.seconds), args.repeats)
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
