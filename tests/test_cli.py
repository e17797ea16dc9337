"""The `reelsense` command end to end: one JSON line per source, errors that do not stop the run."""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline.config import FrameConfig
from pipeline.frames import sample_times


def _run(*args: str) -> tuple[int, list[dict]]:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_probe_prints_media_facts(media) -> None:
    code, records = _run("probe", str(media("hevc_51.mp4")))
    assert code == 0 and len(records) == 1
    media_info = records[0]["media"]
    assert records[0]["status"] == "ok"
    assert media_info["video"]["codec"] == "hevc" and media_info["audio"]["channels"] == 6
    assert media_info["has_video"] and media_info["has_audio"]


def test_a_bad_source_fails_alone_with_a_typed_error(media, tmp_path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    code, records = _run(
        "probe", str(empty), str(media("no_audio.mp4")), "ftp://example.com/a.mp4", "http://169.254.169.254/x"
    )
    assert code == 1
    assert [r["status"] for r in records] == ["error", "ok", "error", "error"]
    assert [r.get("error", {}).get("code") for r in records] == [
        "empty_file",
        None,
        "unsupported_scheme",
        "url_forbidden",
    ]
    assert all(r["error"]["message"] for r in records if r["status"] == "error")


def test_inspect_summarises_frames_and_audio(media) -> None:
    code, records = _run("inspect", "--no-transcript", "--frames", "8", str(media("vp9_opus.webm")))
    assert code == 0
    summary = records[0]
    expected = len(sample_times(summary["media"]["duration_s"], FrameConfig(num_frames=8)))  # short: fewer
    assert summary["frames"]["count"] == expected >= 4 and summary["frames"]["size"] == [224, 224]
    assert summary["audio"]["has_audio"] and summary["audio"]["sample_rate"] == 16_000
    assert summary["transcript"]["has_speech"] is False
    assert set(summary["timings_ms"]) >= {"probe", "frames", "audio", "total"}


def test_inspect_transcribes_speech(tmp_path) -> None:
    from scripts.make_samples import make_samples

    review, _ = make_samples(tmp_path)
    code, records = _run("inspect", "--cache-dir", str(tmp_path / "cache"), str(review))
    assert code == 0
    transcript = records[0]["transcript"]
    assert transcript["has_speech"] and transcript["language"] == "en"
    assert "delicious" in transcript["text"].lower()
