"""Shared fixtures: a session-wide library of media files that the tests make themselves."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests import media_factory as mf


class MediaLibrary:
    """Makes each named clip once per test session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._makers: dict[str, Callable[[Path], object]] = {
            "h264_aac.mp4": lambda p: mf.write_video(p, duration_s=4.0, audio=mf.tone(4.0)),
            "h264_long_gop.mp4": lambda p: mf.write_video(p, duration_s=10.0, gop=250),
            "h264_short_gop.mp4": lambda p: mf.write_video(p, duration_s=10.0, gop=12),
            "no_audio.mp4": lambda p: mf.write_video(p, duration_s=2.0),
            "av1.mp4": lambda p: mf.write_video(p, duration_s=2.0, codec="libsvtav1"),
            "vp9_opus.webm": lambda p: mf.write_video(
                p,
                duration_s=2.0,
                codec="libvpx-vp9",
                audio=mf.tone(2.0, rate=48_000),
                audio_codec="libopus",
                audio_rate=48_000,
            ),
            "hevc_51.mp4": lambda p: mf.write_video(
                p,
                duration_s=2.0,
                codec="libx265",
                audio=_surround_test_signal(2.0, 48_000),
                audio_rate=48_000,
                audio_layout="5.1",
            ),
            "vfr.mp4": lambda p: mf.write_video(p, frame_times_s=VFR_TIMES),
            "portrait_rot90.mp4": self._rotated,
            "audio_only.mp4": lambda p: mf.write_audio(p, mf.tone(2.0), codec="aac", container_format="mp4"),
            "image.png": lambda p: mf.ffmpeg(
                "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", str(p)
            ),
            "damaged.avi": self._truncated_avi,
            "no_moov.mp4": self._no_moov,
        }

    def __call__(self, name: str) -> Path:
        path = self.root / name
        if not path.exists():
            self._makers[name](path)
        return path

    def _rotated(self, path: Path) -> None:
        upright = self.root / "rot_src.mp4"
        # Portrait content 240x320 shown upright; stored as 320x240 and a display matrix saying
        # "rotate 90 degrees counter-clockwise", as phones do.
        mf.write_video(upright, duration_s=1.0, size=(240, 320))
        mf.ffmpeg(
            "-i",
            str(upright),
            "-vf",
            "transpose=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(self.root / "rot_cw.mp4"),
        )
        mf.ffmpeg(
            "-i", str(self.root / "rot_cw.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path)
        )

    def _truncated_avi(self, path: Path) -> None:
        source = self.root / "avi_src.mp4"
        mf.write_video(source, duration_s=6.0)
        full = self.root / "full.avi"  # AVI at a constant 25 fps: its header declares the frame count
        mf.ffmpeg("-i", str(source), "-c:v", "mpeg4", "-q:v", "3", "-r", "25", str(full))
        data = full.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # the index at the end is lost with the second half

    def _no_moov(self, path: Path) -> None:
        full = self.root / "moov_at_end.mp4"
        mf.write_video(full, duration_s=3.0, audio=mf.tone(3.0))
        data = full.read_bytes()
        assert data.find(b"moov") > len(data) // 2, "expected the moov atom at the end (no faststart)"
        path.write_bytes(data[: len(data) // 2])


# Irregular frame times (seconds): bursts and gaps, as phones record when the light changes.
VFR_TIMES = [0.0, 0.04, 0.08, 0.3, 0.35, 0.9, 0.95, 1.0, 1.5, 1.9, 2.6, 2.62, 2.64, 3.5]


def _surround_test_signal(duration_s: float, rate: int) -> np.ndarray:
    """Six channels, each a different tone, so a downmix that drops channels is visible."""
    freqs = [220.0, 330.0, 440.0, 110.0, 550.0, 660.0]
    return np.stack([mf.tone(duration_s, rate, (f,), amp=0.2) for f in freqs])


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    for tool in ("ffmpeg",):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for the tests: apt-get install {tool}")
    return MediaLibrary(tmp_path_factory.mktemp("media"))
