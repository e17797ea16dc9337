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
from tests.fresh_interpreter import modules_loaded_by


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


def _click_track(bpm: float, duration_s: float, rate: int = 16_000) -> np.ndarray:
    """A 10 ms 1 kHz blip on every beat: the onsets a drum machine would give."""
    samples = np.zeros(int(duration_s * rate), dtype=np.float32)
    blip = (np.hanning(160) * np.sin(2 * np.pi * 1000.0 * np.arange(160) / rate)).astype(np.float32)
    for start in (np.arange(0.0, duration_s - 0.02, 60.0 / bpm) * rate).astype(int):
        samples[start : start + blip.size] = blip
    return samples


def test_prosody_features_follow_pitch_and_loudness() -> None:
    rate = 16_000
    low = Audio(mf.tone(2.0, rate, (150.0,), amp=0.1), rate, 1)
    high = Audio(mf.tone(2.0, rate, (300.0,), amp=0.5), rate, 1)
    low_f, high_f = audio_features(low), audio_features(high)
    assert abs(low_f.pitch_mean_hz - 150.0) < 3 and abs(high_f.pitch_mean_hz - 300.0) < 6
    assert high_f.rms_mean > 3 * low_f.rms_mean
    assert low_f.voiced_fraction > 0.9 and low_f.log_mel.shape == (64,)
    assert -1.0 < high_f.log_mel.max() <= 0.0 and high_f.log_mel.min() >= -80.0  # dB below the loudest


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_pitch_of_a_harmonic_tone_is_its_fundamental(f0: float) -> None:
    rate = 16_000
    t = np.arange(3 * rate) / rate
    # Harmonics 1-5 with the second strongest: YIN must not report an octave up.
    weights = (0.5, 1.0, 0.6, 0.4, 0.3)
    wave = sum(w * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, w in enumerate(weights))
    features = audio_features(Audio((0.1 * wave).astype(np.float32), rate, 1))
    assert abs(features.pitch_mean_hz - f0) < 0.02 * f0
    assert features.pitch_std_hz < 0.02 * f0 and features.voiced_fraction > 0.9


@pytest.mark.parametrize("bpm", [90.0, 128.0, 150.0])
def test_tempo_of_a_click_track(bpm: float) -> None:
    features = audio_features(Audio(_click_track(bpm, 10.0), 16_000, 1))
    assert abs(features.tempo_bpm - bpm) < 0.03 * bpm


def test_silence_and_noise_have_no_pitch() -> None:
    rate = 16_000
    noise = np.random.default_rng(13).standard_normal(3 * rate).astype(np.float32)
    for samples in (np.zeros(3 * rate, dtype=np.float32), 1e-5 * noise):  # digital silence, then dither
        features = audio_features(Audio(samples, rate, 1))
        assert features.pitch_mean_hz == 0.0 and features.voiced_fraction == 0.0
    loud_noise = audio_features(Audio(0.2 * noise, rate, 1))
    assert loud_noise.voiced_fraction < 0.05 and loud_noise.rms_mean > 0.1


def test_speech_after_silence_is_voiced_only_where_spoken(tmp_path) -> None:
    wav = mf.speech_wav(tmp_path / "speech.wav", "Good morning, this is a short test of the voice.")
    spoken = decode_audio(wav, probe(wav), AudioConfig())
    padded = np.concatenate([np.zeros(spoken.samples.size, dtype=np.float32), spoken.samples])
    alone = audio_features(spoken)
    with_silence = audio_features(Audio(padded, 16_000, 1))
    assert 60.0 < alone.pitch_mean_hz < 300.0  # a speaking voice, not a harmonic or a subharmonic
    assert abs(with_silence.pitch_mean_hz - alone.pitch_mean_hz) < 0.05 * alone.pitch_mean_hz
    assert abs(with_silence.voiced_fraction - alone.voiced_fraction / 2) < 0.05


def test_prosody_does_not_load_a_jit_compiler() -> None:
    code = (
        "import numpy as np\n"
        "from pipeline.audio_features import audio_features\n"
        "from pipeline.types import Audio\n"
        "t = np.arange(32_000) / 16_000\n"
        "audio_features(Audio((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16_000, 1))\n"
    )
    assert modules_loaded_by(code, ("numba", "librosa", "llvmlite")) == []
