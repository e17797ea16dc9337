"""Bad input: each gets a clear typed error or a correct degraded result, never a crash or a hang."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.errors import ErrorCode, MediaError
from pipeline.audio import decode_audio
from pipeline.config import AudioConfig, FrameConfig, MediaConfig
from pipeline.frames import sample_frames, sample_times
from pipeline.media import decode_media
from pipeline.probe import probe
from tests import media_factory as mf


def _error_code(path) -> ErrorCode:
    with pytest.raises(MediaError) as caught:
        decode_media(path, MediaConfig(), recognizer=None)
    assert caught.value.message and "Traceback" not in caught.value.message
    return caught.value.code


def test_zero_byte_file(tmp_path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert _error_code(path) is ErrorCode.EMPTY_FILE


def test_random_bytes(tmp_path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(200_000))
    assert _error_code(path) is ErrorCode.INVALID_MEDIA


def test_truncated_mp4_without_moov_atom(media) -> None:
    assert _error_code(media("no_moov.mp4")) is ErrorCode.INVALID_MEDIA


def test_missing_file(tmp_path) -> None:
    assert _error_code(tmp_path / "nope.mp4") is ErrorCode.NOT_FOUND


def test_still_image_is_not_a_video(media, tmp_path) -> None:
    assert _error_code(media("image.png")) is ErrorCode.NOT_A_VIDEO
    disguised = tmp_path / "photo.mp4"
    disguised.write_bytes(media("image.png").read_bytes())
    assert _error_code(disguised) is ErrorCode.NOT_A_VIDEO


def test_truncated_avi_decodes_what_is_there(media) -> None:
    path = media("damaged.avi")  # 6 s (150 frames) declared, the second half of the file cut off
    info = probe(path)
    assert info.video.declared_frames == 150
    frames = sample_frames(path, info, FrameConfig(num_frames=8, min_spacing_s=None))
    assert frames.count == 8
    assert 2.0 < frames.timestamps_s[-1] < 3.2, "samples spread over the part that is really there"
    for pixels, time_s in zip(frames.pixels, frames.timestamps_s, strict=True):
        assert mf.read_index(pixels) == round(time_s * 25)


def test_over_reported_duration_respreads_samples_over_what_decodes(media) -> None:
    path = media("h264_aac.mp4")  # 4 s
    info = probe(path)
    lying = replace(info, duration_s=12.0, video=replace(info.video, duration_s=12.0))
    frames = sample_frames(path, lying, FrameConfig(num_frames=8, min_spacing_s=None))
    assert frames.truncated and frames.count == 8
    assert frames.timestamps_s[0] < 0.5 and frames.timestamps_s[-1] > 3.0
    for pixels, time_s in zip(frames.pixels, frames.timestamps_s, strict=True):
        assert mf.read_index(pixels) == round(time_s * 25)


def test_mp4_with_only_audio(media) -> None:
    result = decode_media(media("audio_only.mp4"), MediaConfig(), recognizer=None)
    assert not result.info.has_video and result.frames.count == 0
    assert result.audio.has_audio and abs(result.audio.duration_s - 2.0) < 0.1


def test_video_without_audio(media) -> None:
    result = decode_media(media("no_audio.mp4"), MediaConfig(), recognizer=None)
    expected = sample_times(result.info.duration_s, MediaConfig().frames)
    assert result.frames.count == len(expected) >= 4 and not result.audio.has_audio
    assert not result.transcript.has_speech and result.transcript.text == ""


@pytest.mark.parametrize("suffix", [".avi", ".txt", ""])
def test_wrong_extension_is_read_by_content(media, tmp_path, suffix: str) -> None:
    path = tmp_path / f"clip{suffix}"
    path.write_bytes(media("h264_aac.mp4").read_bytes())
    result = decode_media(path, MediaConfig(), recognizer=None)
    expected = sample_times(result.info.duration_s, MediaConfig().frames)
    assert result.info.has_video and result.info.has_audio and result.frames.count == len(expected) >= 4


@pytest.mark.parametrize("name", ["av1.mp4", "vp9_opus.webm", "hevc_51.mp4", "portrait_rot90.mp4", "vfr.mp4"])
def test_modern_and_unusual_videos_decode(media, name: str) -> None:
    result = decode_media(media(name), MediaConfig(), recognizer=None)
    targets = sample_times(result.info.duration_s, MediaConfig().frames)
    # Every target gives a frame (VFR's bursts may merge two targets into one frame, never more).
    assert 0 < result.frames.count <= len(targets) and np.all(np.diff(result.frames.timestamps_s) > 0)
    assert result.frames.count == len(targets) or name == "vfr.mp4"
    assert result.audio.has_audio == result.info.has_audio
    if result.audio.has_audio:  # the whole soundtrack, at 16 kHz
        assert abs(result.audio.duration_s - result.info.duration_s) < 0.2


@pytest.mark.slow
def test_25_minute_video_is_bounded_by_samples_not_length(tmp_path) -> None:
    path = tmp_path / "long.mp4"
    mf.ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=192x108:rate=10",
        "-f", "lavfi", "-i", "sine=f=300:sample_rate=16000",
        "-t", "1500", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-b:a", "32k",
        "-shortest", str(path),
    )  # fmt: skip
    info = probe(path)
    assert abs(info.duration_s - 1500) < 1
    frames = sample_frames(path, info, FrameConfig(num_frames=16))
    assert frames.count == 16 and frames.timestamps_s[-1] > 1400
    # 15,000 frames in the file; seeking decodes at most a GOP (50 frames) per sample.
    assert frames.decoded_count <= 16 * 55
    audio = decode_audio(path, info, AudioConfig())
    assert abs(audio.duration_s - 1500) < 1
    assert audio.samples.size == pytest.approx(1500 * 16_000, rel=1e-3) and audio.samples.dtype == np.float32


def test_media_longer_than_the_limit_is_refused(media) -> None:
    with pytest.raises(MediaError) as caught:
        decode_media(media("h264_aac.mp4"), MediaConfig(max_duration_s=1.0), recognizer=None)
    assert caught.value.code is ErrorCode.MEDIA_TOO_LONG
