"""Spectral building blocks for the prosody features, in numpy only.

librosa's versions of these compile with numba in every new process (seconds warm, minutes on a loaded
machine with a cold cache); these are plain vectorised numpy with the same conventions (centred frames,
zero padding, a periodic Hann window, Slaney mel filters, dB with an 80 dB floor), so the numbers match
librosa's closely. numpy only: importing scipy.signal cost a second or more of every process's start.
Work is done in blocks of frames so a ten-minute clip never holds all its spectra at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

N_FFT = 2048
BLOCK_FRAMES = 512  # frames transformed at once: bounds memory (512 x 2048 x 8 bytes per array)
TOP_DB = 80.0


def centred_frames(samples: F32, frame_length: int, hop: int) -> npt.NDArray[np.float32]:
    """(n_frames, frame_length) view of `samples` zero-padded by half a frame each side (librosa's centre)."""
    padded = np.pad(samples.astype(np.float32, copy=False), frame_length // 2)
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame_length)
    return windows[::hop]


def blocks(frames: npt.NDArray[Any]) -> Iterator[npt.NDArray[Any]]:
    """Consecutive groups of at most BLOCK_FRAMES rows (views, no copies)."""
    for start in range(0, frames.shape[0], BLOCK_FRAMES):
        yield frames[start : start + BLOCK_FRAMES]


def map_blocks(frames: npt.NDArray[Any], fn: Callable[[npt.NDArray[Any]], F64]) -> F64:
    """`fn` over blocks of rows, results stacked on the first axis."""
    return np.concatenate([fn(block) for block in blocks(frames)], axis=0)


def rms(samples: F32, hop: int, frame_length: int = N_FFT) -> F64:
    """(n_frames,) root-mean-square of each centred frame."""
    frames = centred_frames(samples, frame_length, hop)
    return map_blocks(frames, lambda b: np.sqrt(np.mean(np.square(b, dtype=np.float64), axis=1)))


def power_spectrogram(samples: F32, hop: int, n_fft: int = N_FFT) -> F64:
    """(n_frames, n_fft // 2 + 1) |STFT|^2 with a periodic Hann window."""
    window = periodic_hann(n_fft)
    frames = centred_frames(samples, n_fft, hop)
    return map_blocks(frames, lambda b: np.abs(np.fft.rfft(b * window, axis=1)) ** 2)


def periodic_hann(length: int) -> F64:
    """The Hann window for spectral analysis (scipy's get_window("hann", n, fftbins=True))."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def _hz_to_mel(hz: F64) -> F64:
    # Slaney's scale: linear below 1 kHz, logarithmic above (librosa's htk=False).
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mel = hz / f_sp
    log_part = hz >= min_log_hz
    mel[log_part] = min_log_mel + np.log(hz[log_part] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: F64) -> F64:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    hz = f_sp * mel
    log_part = mel >= min_log_mel
    hz[log_part] = min_log_hz * np.exp(logstep * (mel[log_part] - min_log_mel))
    return hz


def mel_filterbank(sr: int, n_mels: int, n_fft: int = N_FFT) -> F64:
    """(n_mels, n_fft // 2 + 1) triangular Slaney-normalised filters from 0 Hz to Nyquist."""
    fft_hz = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    top_mel = _hz_to_mel(np.array([sr / 2]))[0]
    edges_hz = _mel_to_hz(np.linspace(0.0, top_mel, n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # equal area per filter


def power_to_db(power: F64, ref: float, amin: float = 1e-10) -> F64:
    """10 log10(power / ref), floored at TOP_DB below the loudest value."""
    db = 10.0 * np.log10(np.maximum(amin, power)) - 10.0 * np.log10(max(amin, ref))
    return np.maximum(db, db.max() - TOP_DB) if db.size else db


def autocorrelate(frames: npt.NDArray[np.floating], max_lag: int) -> F64:
    """(n, max_lag) autocorrelation of each row for lags 0..max_lag-1 (FFT, no wrap-around)."""
    n_fft = 1 << (2 * frames.shape[1] - 1).bit_length()  # a power of two past 2n - 1
    spectrum = np.fft.rfft(frames, n=n_fft, axis=1)
    return np.fft.irfft(np.abs(spectrum) ** 2, n=n_fft, axis=1)[:, :max_lag]
