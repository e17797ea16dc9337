"""Prosody features: loudness, pitch, tempo and a log-mel summary, in numpy (no JIT compiler).

They carry the tone of a clip (an excited voice, a calm one, music's tempo) without understanding words;
the models stage feeds them to the fusion head next to the Whisper encoder embedding. Pitch is YIN
(de Cheveigné & Kawahara 2002) as librosa computes it; tempo is the autocorrelation of the onset-strength
envelope under a log-normal prior around 120 BPM, as librosa's `tempo`. librosa itself is not used: its
pitch, onset and tempo code compiles with numba in every new process (3 s warm, 99 s cold on a loaded box).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.types import AudioFeatures
from pipeline import dsp
from pipeline.types import Audio

F64 = npt.NDArray[np.float64]

N_MELS = 64
HOP = 512  # 32 ms at 16 kHz
PITCH_MIN_HZ = 65.0  # C2: below most speaking voices
PITCH_MAX_HZ = 500.0  # above most speaking voices, below the harmonics YIN confuses for pitch
VOICED_DB = -35.0  # frames quieter than this (relative to the loudest) do not count as voiced
SILENCE_RMS = 1e-3  # -60 dBFS: below this a frame is silence (or dither), whatever its relative level
YIN_TROUGH = 0.1  # YIN's absolute threshold: the first dip below it is the period
APERIODIC = 0.25  # a frame whose best dip stays above this is noise, not a voice or a note
ONSET_MELS = 128  # the onset envelope's bands (librosa's default)
TEMPO_PRIOR_BPM, TEMPO_PRIOR_OCTAVES = 120.0, 1.0  # log-normal prior: halves and doubles are ambiguous
TEMPO_MAX_BPM = 320.0
TEMPO_WINDOW_S = 8.0  # autocorrelation window: a few bars
ANALYSIS_MAX_S = 600.0  # features describe tone, which the first ten minutes tell as well as the whole


def audio_features(audio: Audio, max_seconds: float = ANALYSIS_MAX_S) -> AudioFeatures:
    """Summarise `audio` (N,) float32; silent or missing audio gives all zeros."""
    samples = audio.samples[: int(max_seconds * audio.sample_rate)].astype(np.float32, copy=False)
    if samples.size < audio.sample_rate // 4 or not np.any(samples):
        return _silent()
    sr = audio.sample_rate
    rms = dsp.rms(samples, HOP)
    power = dsp.power_spectrogram(samples, HOP)
    mel = power @ dsp.mel_filterbank(sr, N_MELS).T
    log_mel = dsp.power_to_db(mel, ref=float(mel.max())).mean(axis=0).astype(np.float32)
    pitch, aperiodicity = yin(samples, sr)
    loud_db = 20.0 * np.log10(np.maximum(rms, 1e-5) / max(float(rms.max()), 1e-5))
    frames = min(pitch.size, rms.size)
    voiced_mask = (loud_db[:frames] > VOICED_DB) & (rms[:frames] > SILENCE_RMS)
    voiced_mask &= aperiodicity[:frames] < APERIODIC
    voiced = pitch[:frames][voiced_mask]
    return AudioFeatures(
        rms_mean=float(rms.mean()),
        rms_std=float(rms.std()),
        pitch_mean_hz=float(voiced.mean()) if voiced.size else 0.0,
        pitch_std_hz=float(voiced.std()) if voiced.size else 0.0,
        voiced_fraction=float(voiced.size / max(frames, 1)),
        tempo_bpm=tempo(onset_envelope(power, sr), sr),
        log_mel=log_mel,
    )


def yin(samples: npt.NDArray[np.float32], sr: int) -> tuple[F64, F64]:
    """Per centred frame (hop HOP), the YIN pitch in Hz and its aperiodicity (the CMND at the chosen lag)."""
    min_period = int(np.floor(sr / PITCH_MAX_HZ))
    max_period = min(int(np.ceil(sr / PITCH_MIN_HZ)), dsp.N_FFT - 1)
    frames = dsp.centred_frames(samples, dsp.N_FFT, HOP)
    parts = [_yin_block(block.astype(np.float64), sr, min_period, max_period) for block in dsp.blocks(frames)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _yin_block(frames: F64, sr: int, min_period: int, max_period: int) -> tuple[F64, F64]:
    cmnd = _cumulative_mean_normalized_difference(frames, min_period, max_period)  # (B, lags)
    shifts = _parabolic_shifts(cmnd)
    trough = np.zeros_like(cmnd, dtype=bool)
    trough[:, 1:-1] = (cmnd[:, 1:-1] < cmnd[:, :-2]) & (cmnd[:, 1:-1] <= cmnd[:, 2:])
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    trough[:, -1] = cmnd[:, -1] < cmnd[:, -2]
    below = trough & (cmnd < YIN_TROUGH)
    # The first trough below the threshold, or else the global minimum (YIN's absolute threshold step).
    best = np.where(below.any(axis=1), np.argmax(below, axis=1), np.argmin(cmnd, axis=1))
    rows = np.arange(cmnd.shape[0])
    period = min_period + best + shifts[rows, best]
    return sr / period, cmnd[rows, best]


def _cumulative_mean_normalized_difference(frames: F64, min_period: int, max_period: int) -> F64:
    """(B, max_period - min_period + 1) YIN's d'(tau) for tau in [min_period, max_period] (its eq. 8)."""
    acf = dsp.autocorrelate(frames, max_period + 1)
    energy = np.cumsum(np.square(frames), axis=1)
    diff = np.zeros((frames.shape[0], max_period + 1))
    # d(k) = 2 (r(0) - r(k)) - sum_{m<k} x(m)^2: the squared difference of the frame and its k-lagged self.
    diff[:, 1:] = 2.0 * (acf[:, :1] - acf[:, 1:]) - energy[:, :max_period]
    cumulative_mean = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, max_period + 1)
    denominator = cumulative_mean[:, min_period - 1 : max_period]
    return diff[:, min_period:] / (denominator + np.finfo(np.float64).tiny)


def _parabolic_shifts(x: F64) -> F64:
    """Per lag, the offset of the parabola through it and its neighbours (0 at edges or past one bin)."""
    shifts = np.zeros_like(x)
    a = x[:, 2:] + x[:, :-2] - 2.0 * x[:, 1:-1]
    b = (x[:, 2:] - x[:, :-2]) / 2.0
    inside = np.abs(b) < np.abs(a)
    shifts[:, 1:-1] = np.where(inside, -b / np.where(inside, a, 1.0), 0.0)
    return shifts


def onset_envelope(power: F64, sr: int) -> F64:
    """(n_frames,) onset strength: mean over mel bands of the rectified rise in dB from the frame before."""
    mel_db = dsp.power_to_db(power @ dsp.mel_filterbank(sr, ONSET_MELS).T, ref=1.0)
    rise = np.maximum(0.0, mel_db[1:] - mel_db[:-1]).mean(axis=1)
    # Shift by the lag plus half a window so that onsets line up with the centred frames.
    lead = 1 + dsp.N_FFT // (2 * HOP)
    return np.concatenate([np.zeros(lead), rise])[: power.shape[0]]


def tempo(envelope: F64, sr: int) -> float:
    """Beats per minute from the onset envelope's local autocorrelation (librosa's tempogram, averaged
    over time, under its log-normal prior); 0.0 without onsets."""
    if envelope.size < 4 or not np.any(envelope > 0):
        return 0.0
    fps = sr / HOP
    window = round(TEMPO_WINDOW_S * fps)
    # One Hann-windowed stretch centred on every frame (ramps to zero past the ends), each autocorrelation
    # normalised to its lag 0.
    padded = np.pad(envelope, window // 2, mode="linear_ramp", end_values=(0, 0))
    stretches = np.lib.stride_tricks.sliding_window_view(padded, window)[: envelope.size]
    hann = dsp.periodic_hann(window)
    acf = dsp.map_blocks(stretches, lambda block: _normalised_acf(block * hann, window))
    mean_acf = acf.mean(axis=0)
    bpms = 60.0 * fps / np.arange(1, window, dtype=np.float64)
    log_prior = -0.5 * ((np.log2(bpms) - np.log2(TEMPO_PRIOR_BPM)) / TEMPO_PRIOR_OCTAVES) ** 2
    score = np.log1p(1e6 * np.maximum(mean_acf[1:], 0.0)) + log_prior
    score[bpms >= TEMPO_MAX_BPM] = -np.inf
    best = int(np.argmax(score))
    if mean_acf[best + 1] <= 0:
        return 0.0
    return float(60.0 * fps / _refined_lag(mean_acf, best + 1))


def _normalised_acf(frames: F64, window: int) -> F64:
    acf = dsp.autocorrelate(frames, window)
    peak = np.abs(acf).max(axis=1, keepdims=True)
    return acf / np.where(peak > np.finfo(np.float64).tiny, peak, 1.0)  # an empty stretch stays zero


def _refined_lag(acf: F64, lag: int) -> float:
    """The autocorrelation peak's lag to a fraction of a frame (a parabola through it and its neighbours)."""
    if lag <= 0 or lag + 1 >= acf.size:
        return float(lag)
    left, mid, right = acf[lag - 1], acf[lag], acf[lag + 1]
    curve = left + right - 2.0 * mid
    offset = 0.5 * (left - right) / curve if curve < 0 else 0.0
    return float(lag + np.clip(offset, -0.5, 0.5))


def _silent() -> AudioFeatures:
    return AudioFeatures(
        rms_mean=0.0,
        rms_std=0.0,
        pitch_mean_hz=0.0,
        pitch_std_hz=0.0,
        voiced_fraction=0.0,
        tempo_bpm=0.0,
        log_mel=np.zeros((N_MELS,), dtype=np.float32),
    )
