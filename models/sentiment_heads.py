"""The small sentiment classifiers `models.sentiment.TextSentiment` stacks, and their shipped weights.

- `LinearHead`: multinomial logistic regression (ours: trained by `scripts/train_sentiment.py`).
- `MlpHead`: sentimentai 2.0's MLP over multilingual-e5-small "query: " embeddings (MIT; a JSON file in the
  sentimentai-py wheel, sha256-verified through `models.bundled`). Its probabilities saturate (a direction
  more than a calibrated confidence), so the stack reads its clipped log-probabilities as features.
- `SentimentWeights`: our three heads (embedding, lexicon, combined) and the record of how they were made.

All in SENTIMENTS order (negative, neutral, positive). numpy only; nothing is loaded at import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from models.types import SENTIMENTS

F64 = npt.NDArray[np.float64]

WEIGHTS_RESOURCE = "data/sentiment/text_sentiment.json"  # inside the `models` package
WEIGHTS_FORMAT = 2  # 2: e5-small embeddings and the neural head in the stack (1 was MiniLM, no neural head)
EMBEDDING_SPEC = "package:multilingual-e5-small"  # what the embedding head was trained on
EMBEDDING_DIM = 384
NEURAL_HEAD = "sentimentai-e5-small"  # bundled model name of the MLP head
LEXICON_FEATURES: tuple[str, ...] = (
    "vader_compound",  # [-1, 1], VADER's normalised sum with negation / "but" / intensifier rules
    "vader_pos",  # [0, 1] share of positive-valence words
    "vader_neg",  # [0, 1] share of negative-valence words
    "textblob_polarity",  # [-1, 1] Pattern adjective lexicon, "not" flips and damps
    "textblob_subjectivity",  # [0, 1]
)
STACK_INPUTS = 3 + 3 + len(LEXICON_FEATURES)  # embedding log-probs, neural log-probs, lexicon features
NEURAL_LOG_FLOOR = float(np.log(1e-4))  # the MLP says 0.000 and 1.000: keep its log-probs finite


def log_softmax(logits: F64) -> F64:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    out: F64 = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


@dataclass(frozen=True)
class LinearHead:
    """Multinomial logistic regression: probs = softmax(x @ coef.T + intercept), in SENTIMENTS order."""

    coef: F64  # (3, D)
    intercept: F64  # (3,)

    def logits(self, x: npt.ArrayLike) -> F64:
        features = np.asarray(x, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.coef.shape[1]:
            raise ValueError(f"expected (N, {self.coef.shape[1]}) features, got {features.shape}")
        out: F64 = features @ self.coef.T + self.intercept
        return out

    def probs(self, x: npt.ArrayLike) -> F64:
        return np.exp(self.log_probs(x))

    def log_probs(self, x: npt.ArrayLike) -> F64:
        return log_softmax(self.logits(x))

    def to_json(self, decimals: int = 6) -> dict[str, Any]:
        return {
            "coef": np.round(self.coef, decimals).tolist(),
            "intercept": np.round(self.intercept, decimals).tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], dim: int) -> LinearHead:
        coef = np.asarray(data["coef"], dtype=np.float64)
        intercept = np.asarray(data["intercept"], dtype=np.float64)
        if coef.shape != (len(SENTIMENTS), dim) or intercept.shape != (len(SENTIMENTS),):
            raise ValueError(f"head shape {coef.shape}/{intercept.shape}, expected (3, {dim})/(3,)")
        return cls(coef=coef, intercept=intercept)


@dataclass(frozen=True)
class MlpHead:
    """sentimentai's scoring MLP: z = relu(...relu(x W1.T + b1)...) Wn.T + bn, then softmax(z / T)."""

    layers: tuple[tuple[F64, F64], ...]  # (W (out, in), b (out,)) per layer
    temperature: float

    @property
    def dim(self) -> int:
        return int(self.layers[0][0].shape[1])

    def log_probs(self, x: npt.ArrayLike) -> F64:
        z = np.asarray(x, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) embeddings, got {z.shape}")
        for i, (weight, bias) in enumerate(self.layers):
            z = z @ weight.T + bias
            if i < len(self.layers) - 1:
                z = np.maximum(z, 0.0)
        return np.maximum(log_softmax(z / self.temperature), NEURAL_LOG_FLOOR)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MlpHead:
        # Its class columns are [-1, 0, 1], which is SENTIMENTS' order.
        if data.get("type") != "mlp" or list(data.get("classes", [])) != [-1, 0, 1]:
            raise ValueError("not a 3-class sentimentai MLP head")
        layers = tuple(
            (np.asarray(layer["W"], dtype=np.float64), np.asarray(layer["b"], dtype=np.float64))
            for layer in data["layers"]
        )
        if layers[-1][0].shape[0] != len(SENTIMENTS):
            raise ValueError(f"the head's last layer has {layers[-1][0].shape[0]} outputs, expected 3")
        return cls(layers=layers, temperature=float(data.get("T") or 1.0))


@lru_cache(maxsize=1)
def load_neural_head() -> MlpHead:
    """sentimentai's MLP head, verified by sha256 where pip put it (read once per process)."""
    from models.bundled import package_model_dir

    path = package_model_dir(NEURAL_HEAD, "sentiment-head") / "e5-small.json"
    return MlpHead.from_json(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class SentimentWeights:
    """Our three heads and the record of how they were made.

    embedding: on the (384,) e5-small embedding.
    lexicon: on the LEXICON_FEATURES.
    combined: on [embedding head's 3 log-probs, the neural head's 3 log-probs, LEXICON_FEATURES] (a stack).
    """

    embedding: LinearHead
    lexicon: LinearHead
    combined: LinearHead
    metadata: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": WEIGHTS_FORMAT,
            "classes": list(SENTIMENTS),
            "lexicon_features": list(LEXICON_FEATURES),
            "embedding_spec": EMBEDDING_SPEC,
            "embedding_dim": EMBEDDING_DIM,
            "stack_inputs": ["embedding_log_probs", "neural_log_probs", *LEXICON_FEATURES],
            "heads": {
                "embedding": self.embedding.to_json(),
                "lexicon": self.lexicon.to_json(),
                "combined": self.combined.to_json(),
            },
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SentimentWeights:
        if data.get("format") != WEIGHTS_FORMAT:
            raise ValueError(f"sentiment weights format {data.get('format')!r}, expected {WEIGHTS_FORMAT}")
        if tuple(data["classes"]) != SENTIMENTS or tuple(data["lexicon_features"]) != LEXICON_FEATURES:
            raise ValueError("sentiment weights were trained for other classes or lexicon features")
        if data.get("embedding_spec") != EMBEDDING_SPEC:
            found = data.get("embedding_spec")
            raise ValueError(f"sentiment weights for {found!r} embeddings, expected {EMBEDDING_SPEC}")
        heads = data["heads"]
        return cls(
            embedding=LinearHead.from_json(heads["embedding"], EMBEDDING_DIM),
            lexicon=LinearHead.from_json(heads["lexicon"], len(LEXICON_FEATURES)),
            combined=LinearHead.from_json(heads["combined"], STACK_INPUTS),
            metadata=dict(data.get("metadata", {})),
        )


@lru_cache(maxsize=1)
def load_weights() -> SentimentWeights:
    """The shipped weights (read once per process)."""
    text = resources.files("models").joinpath(WEIGHTS_RESOURCE).read_text(encoding="utf-8")
    return SentimentWeights.from_json(json.loads(text))


def stack_features(embedding_log_probs: F64, neural_log_probs: F64, lexicon: F64) -> F64:
    """(N, STACK_INPUTS): what the combined head reads, in its order."""
    parts: Sequence[F64] = (embedding_log_probs, neural_log_probs, lexicon)
    return np.hstack(parts)
