"""Typed, frozen values passed between the encoders, the zero-shot priors and the fusion head, and what
the predictor gives back (`LabelScore`, `SentimentResult`, `SegmentResult`: parts of the pipeline's
`Prediction`). The pipeline builds `AudioFeatures` (pipeline/audio_features.py); the models read it.

Arrays are numpy float32 unless stated; shapes are in each docstring. Embeddings meant to be compared by
cosine similarity are L2-normalised by the encoder that makes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

SENTIMENTS: tuple[str, str, str] = ("negative", "neutral", "positive")  # index order everywhere


@dataclass(frozen=True)
class VisionOutput:
    """Per-frame vision features.

    embeddings: (T, D) float32 pooled features (EfficientNet: 1280-d; CLIP: the joint image-text space).
    class_probs: (T, C) float32 classifier probabilities (ImageNet-1k for EfficientNet), or None.
    class_names: the C class names of `class_probs` (empty when None).
    joint_space: embeddings live in a text-comparable space (CLIP): labels can be scored directly.
    """

    embeddings: F32
    class_probs: F32 | None
    class_names: tuple[str, ...]
    joint_space: bool


@dataclass(frozen=True)
class SentimentScores:
    """A distribution over SENTIMENTS (sums to 1), with where it came from."""

    probs: tuple[float, float, float]  # (negative, neutral, positive)
    source: str  # e.g. "text", "audio", "fused"

    @property
    def label(self) -> str:
        # Ties (e.g. a uniform "no evidence" distribution) read as neutral, never as negative.
        best = max(range(len(SENTIMENTS)), key=lambda i: (self.probs[i], SENTIMENTS[i] == "neutral"))
        return SENTIMENTS[best]

    @property
    def confidence(self) -> float:
        return float(max(self.probs))

    def as_dict(self) -> Mapping[str, float]:
        return dict(zip(SENTIMENTS, self.probs, strict=True))


@dataclass(frozen=True)
class EncodedVideo:
    """Everything the frozen encoders produce for one video: the fusion head's whole input.

    It is also what fine-tuning caches per video, so training never decodes a video twice.
    frame_times_s: (T,) float64 presentation time of each frame; vision rows match.
    audio_embedding: (Da,) pooled Whisper encoder output, None without audio.
    prosody: (Dp,) prosody vector (pipeline AudioFeatures flattened), None without audio.
    text_embeddings: (S, Dt) L2-normalised; row 0 is the whole transcript, rows 1.. its segments;
        S == 0 when nothing was said.
    text_spans_s: (S, 2) start/end seconds of each text row (row 0 spans the speech).
    text_sentiment: per text row, its text sentiment distribution.
    text_quality: (S, 3) per text row Whisper's confidence in it: mean token log-probability, no-speech
        probability, number of words (row 0: word-weighted over the segments). None: unknown (fully
        trusted), as in features cached before it existed.
    """

    duration_s: float
    frame_times_s: npt.NDArray[np.float64]
    vision: VisionOutput
    audio_embedding: F32 | None
    prosody: F32 | None
    audio_tone: SentimentScores | None
    text_embeddings: F32
    text_spans_s: npt.NDArray[np.float64]
    text_sentiment: tuple[SentimentScores | None, ...]
    text_quality: F32 | None = None

    @property
    def has_speech(self) -> bool:
        return self.text_embeddings.shape[0] > 0


@dataclass(frozen=True)
class AudioFeatures:
    """Cheap prosody summary of an `Audio` (numpy): the tone of a clip without understanding words.

    log_mel: (n_mels,) mean log-mel energy per band in dB; zeros without audio.
    """

    rms_mean: float
    rms_std: float
    pitch_mean_hz: float  # over voiced frames; 0.0 if none
    pitch_std_hz: float
    voiced_fraction: float
    tempo_bpm: float
    log_mel: npt.NDArray[np.float32]

    def vector(self) -> npt.NDArray[np.float32]:
        """(6 + n_mels,) float32, each part scaled to roughly [-1, 1]: the fusion head's prosody input."""
        scalars = [
            self.rms_mean * 4,
            self.rms_std * 8,
            self.pitch_mean_hz / 300,
            self.pitch_std_hz / 100,
            self.voiced_fraction,
            self.tempo_bpm / 200,
        ]
        return np.concatenate([np.asarray(scalars, dtype=np.float32), self.log_mel / 80.0]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rms_mean": self.rms_mean,
            "rms_std": self.rms_std,
            "pitch_mean_hz": self.pitch_mean_hz,
            "pitch_std_hz": self.pitch_std_hz,
            "voiced_fraction": self.voiced_fraction,
            "tempo_bpm": self.tempo_bpm,
        }


@dataclass(frozen=True)
class LabelScore:
    """A chosen label with its probability, and the whole distribution it was chosen from."""

    label: str
    confidence: float
    scores: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "scores": {name: round(p, 4) for name, p in self.scores.items()},
        }


@dataclass(frozen=True)
class SentimentResult(LabelScore):
    # Per modality, its own distribution, or None when that modality said nothing (no speech: the text
    # prior is absent, not neutral).
    by_modality: Mapping[str, Mapping[str, float] | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["by_modality"] = {
            name: None if scores is None else {k: round(v, 4) for k, v in scores.items()}
            for name, scores in self.by_modality.items()
        }
        return data


@dataclass(frozen=True)
class SegmentResult:
    start_s: float
    end_s: float
    category: LabelScore
    sentiment: LabelScore

    def to_dict(self) -> dict[str, Any]:
        def short(score: LabelScore) -> dict[str, Any]:
            return {"label": score.label, "confidence": round(score.confidence, 4)}

        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "category": short(self.category),
            "sentiment": short(self.sentiment),
        }
