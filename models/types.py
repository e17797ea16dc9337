"""Typed, frozen values passed between the encoders, the zero-shot priors and the fusion head.

Arrays are numpy float32 unless stated; shapes are in each docstring. Embeddings meant to be compared by
cosine similarity are L2-normalised by the encoder that makes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
