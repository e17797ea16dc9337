"""Audio stage: any track to mono 16 kHz float32 aligned to the media clock; no track is a normal result."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import decode_audio
from pipeline.audio_features import audio_features
from pipeline.config import AudioConfig
from pipeline.probe import probe
from pipeline.types import Audio
from tests import media_factory as mf


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("ext", "codec", "rate", "fmt"),
    [
        ("wav", "pcm_s16le", 44_100, None),
        ("flac", "flac", 44_100, None),
        ("mp3", "libmp3lame", 44_100, None),
        ("ogg", "libopus", 48_000, None),
        ("m4a", "aac", 44_100, "ipod"),
    ],
)
def test_audio_only_formats_decode_to_16k_mono(tmp_path, ext, codec, rate, fmt) -> None:
    path = tmp_path / f"tone.{ext}"
    mf.write_audio(path, mf.tone(2.0, rate, (440.0,)), codec=codec, rate=rate, container_format=fmt)
    info = probe(path)
    assert not info.has_video and info.has_audio
    audio = decode_audio(path, info, AudioConfig())
    assert audio.sample_rate == 16_000 and audio.samples.dtype == np.float32
    assert abs(audio.duration_s - 2.0) < 0.1
    assert abs(_dominant_hz(audio.samples, 16_000) - 440.0) < 5.0


def test_surround_51_is_downmixed_keeping_every_front_channel(media) -> None:
    path = media("hevc_51.mp4")
    info = probe(path)
    assert info.audio.channels == 6
    audio = decode_audio(path, info, AudioConfig())
    assert audio.source_channels == 6 and audio.samples.ndim == 1
    spectrum = np.abs(np.fft.rfft(audio.samples))
    freqs = np.fft.rfftfreq(audio.samples.size, 1 / 16_000)
    for tone_hz in (220.0, 330.0, 440.0):  # front left, front right, centre: all must be heard in mono
        band = (freqs > tone_hz - 5) & (freqs < tone_hz + 5)
        assert spectrum[band].max() > 0.05 * spectrum.max()


def test_video_without_audio_track_is_a_normal_empty_result(media) -> None:
    path = media("no_audio.mp4")
    info = probe(path)
    assert info.has_video and not info.has_audio
    audio = decode_audio(path, info, AudioConfig())
    assert not audio.has_audio and audio.samples.shape == (0,) and audio.duration_s == 0.0
    features = audio_features(audio)
    assert features.rms_mean == 0.0 and features.voiced_fraction == 0.0


def test_late_starting_audio_is_padded_onto_the_media_clock(tmp_path) -> None:
    src = tmp_path / "src.mp4"
    mf.write_video(src, duration_s=3.0, audio=mf.tone(2.0, 44_100, (440.0,)))
    delayed = tmp_path / "delayed.mp4"
    # Shift the audio track 1 s later: its first sample must land at 1 s, not 0 s.
    mf.ffmpeg(
        "-i",
        str(src),
        "-itsoffset",
        "1.0",
        "-i",
        str(src),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        str(delayed),
    )
    audio = decode_audio(delayed, probe(delayed), AudioConfig())
    loud = np.flatnonzero(np.abs(audio.samples) > 0.05)
    assert 0.9 < loud[0] / 16_000 < 1.15


def test_max_duration_cuts_audio(media) -> None:
    path = media("h264_aac.mp4")
    audio = decode_audio(path, probe(path), AudioConfig(max_duration_s=1.5))
    assert audio.samples.size == 24_000


def test_prosody_features_follow_pitch_and_loudness() -> None:
    rate = 16_000
    low = Audio(mf.tone(2.0, rate, (150.0,), amp=0.1), rate, 1)
    high = Audio(mf.tone(2.0, rate, (300.0,), amp=0.5), rate, 1)
    low_f, high_f = audio_features(low), audio_features(high)
    assert abs(low_f.pitch_mean_hz - 150.0) < 5 and abs(high_f.pitch_mean_hz - 300.0) < 5
    assert high_f.rms_mean > 3 * low_f.rms_mean
    assert low_f.voiced_fraction > 0.9 and low_f.log_mel.shape == (64,)
