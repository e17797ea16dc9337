"""Probe: the facts about a file that every later stage relies on."""

from __future__ import annotations

import pytest

from pipeline.probe import probe
from tests import media_factory as mf


def test_probe_reports_streams_and_timing(media) -> None:
    info = probe(media("h264_aac.mp4"))
    assert info.container.startswith("mov,mp4")
    assert abs(info.duration_s - 4.0) < 0.1
    assert info.video.codec == "h264" and (info.video.width, info.video.height) == (320, 240)
    assert info.video.nominal_fps == pytest.approx(25.0) and info.video.real_fps == pytest.approx(
        25.0, rel=0.01
    )
    assert not info.video.vfr and info.video.rotation == 0
    assert info.audio.codec == "aac" and info.audio.sample_rate == 44_100 and info.audio.channels == 1
    assert info.has_video and info.has_audio
    data = info.to_dict()
    assert data["has_video"] and data["video"]["display_width"] == 320


def test_variable_frame_rate_is_detected(media) -> None:
    assert probe(media("vfr.mp4")).video.vfr
    assert not probe(media("h264_short_gop.mp4")).video.vfr


def test_real_fps_comes_from_timestamps_not_the_header(tmp_path) -> None:
    # A 10 fps stream muxed with a 30 fps header rate: the packets tell the truth.
    path = tmp_path / "lying_rate.mp4"
    mf.write_video(path, frame_times_s=[i / 10 for i in range(30)], fps=30.0)
    info = probe(path)
    assert info.video.real_fps == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize(
    ("name", "codec"), [("av1.mp4", "av1"), ("vp9_opus.webm", "vp9"), ("hevc_51.mp4", "hevc")]
)
def test_modern_codecs_probe(media, name: str, codec: str) -> None:
    info = probe(media(name))
    assert codec in info.video.codec  # PyAV names the AV1 decoder "libdav1d"


def test_audio_only_container_has_no_video(media) -> None:
    info = probe(media("audio_only.mp4"))
    assert not info.has_video and info.has_audio and abs(info.duration_s - 2.0) < 0.1
