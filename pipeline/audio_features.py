"""Prosody features with librosa: loudness, pitch, tempo and a log-mel summary.

They carry the tone of a clip (an excited voice, a calm one, music's tempo) without understanding words;
the models stage feeds them to the fusion head next to the Whisper encoder embedding.
"""

from __future__ import annotations

import numpy as np

from pipeline.types import Audio, AudioFeatures

N_MELS = 64
HOP = 512  # 32 ms at 16 kHz
PITCH_MIN_HZ = 65.0  # C2: below most speaking voices
PITCH_MAX_HZ = 500.0  # above most speaking voices, below the harmonics YIN confuses for pitch
VOICED_DB = -35.0  # frames quieter than this (relative to the loudest) do not count as voiced
ANALYSIS_MAX_S = 600.0  # features describe tone, which the first ten minutes tell as well as the whole


def audio_features(audio: Audio, max_seconds: float = ANALYSIS_MAX_S) -> AudioFeatures:
    """Summarise `audio` (N,) float32; silent or missing audio gives all zeros."""
    samples = audio.samples[: int(max_seconds * audio.sample_rate)]
    if samples.size < audio.sample_rate // 4 or not np.any(samples):
        return _silent()
    import librosa  # imported here: it pulls in numba, which is slow to import and unused elsewhere

    sr = audio.sample_rate
    rms = librosa.feature.rms(y=samples, hop_length=HOP)[0]
    mel = librosa.feature.melspectrogram(y=samples, sr=sr, n_mels=N_MELS, hop_length=HOP)
    log_mel = librosa.power_to_db(mel, ref=np.max).mean(axis=1).astype(np.float32)
    pitch = librosa.yin(samples, fmin=PITCH_MIN_HZ, fmax=PITCH_MAX_HZ, sr=sr, hop_length=HOP)
    loud_db = librosa.amplitude_to_db(rms, ref=np.max)
    frames = min(pitch.size, loud_db.size)
    voiced = pitch[:frames][loud_db[:frames] > VOICED_DB]
    onset = librosa.onset.onset_strength(y=samples, sr=sr, hop_length=HOP)
    tempo = librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP)
    return AudioFeatures(
        rms_mean=float(rms.mean()),
        rms_std=float(rms.std()),
        pitch_mean_hz=float(voiced.mean()) if voiced.size else 0.0,
        pitch_std_hz=float(voiced.std()) if voiced.size else 0.0,
        voiced_fraction=float(voiced.size / max(frames, 1)),
        tempo_bpm=float(np.ravel(tempo)[0]) if np.size(tempo) else 0.0,
        log_mel=log_mel,
    )


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
