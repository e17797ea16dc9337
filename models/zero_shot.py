"""Zero-shot priors: category and sentiment scores before (and beneath) the fusion head.

Without CLIP offline, vision reaches the labels through ImageNet and WordNet (the hierarchy bridge): each
ImageNet class is the terms that say what it is (its name and its hypernyms: "toucan, piciform bird, bird,
..., animal"), each term is compared with each label by a small English sentence encoder (MiniLM: on the
dev set's tuning half it placed single WordNet terms near their labels better than the multilingual
encoders), a class scores a label by its best term, and a frame scores a label by its top classes' scores
weighted by their probability. The transcript embedding is compared with the labels in the text encoder's
own space. Each modality gives a distribution over the labels, and the prior combines them:

1. Calibration. A label whose embedding is close to *everything* (a generic "household objects" or
   "comedy") attracts every clip. Each label's similarity is therefore measured against its mean
   similarity to a broad reference set (for vision: its mean score over the 1000 classes; for text: the
   1000 class texts, concrete things of every kind), the "content-free input" correction of Zhao et al.
   (2021), scaled by `calibration`.
2. Reliability. A modality is trusted by how much it can be trusted on this clip: Whisper's own
   confidence (mean log-probability, no-speech probability, number of words) for the transcript, the
   classifier's confidence (top class probability, entropy) for the frames. Each gives a weight in (0, 1)
   through a logistic function of those features, and the prior is the weighted product of experts
   (sum of weight x floored log-probability), so a confidently wrong but unreliable modality loses.
With no modality at all the prior is uniform. Sentiment's prior is the text's sentiment alone.

The constants live in `FusionConstants`; the shipped values (`models/data/fusion_constants.json`) were
fitted by `scripts/tune_fusion.py` on the tuning half of the dev set (docs/DEVSET.md), never on its test
half or on the test suite's clips; the file records that.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from models.types import F32, SENTIMENTS, SentimentScores

CONSTANTS_RESOURCE = "data/fusion_constants.json"  # inside the `models` package
TOP_CLASSES = 10  # ImageNet classes per frame that vote; the long tail is noise

# Reliability features, in the order of the coefficients below.
TEXT_RELIABILITY_FEATURES = ("avg_logprob", "no_speech_prob", "log_words")
VISION_RELIABILITY_FEATURES = ("top_class_prob", "class_entropy")


@dataclass(frozen=True)
class Reliability:
    """weight = sigmoid(bias + coef . features); bias large and coef zero: always fully trusted."""

    bias: float = 8.0
    coef: tuple[float, ...] = ()

    def weight(self, features: Sequence[float]) -> float:
        if len(self.coef) not in (0, len(features)):
            raise ValueError(f"{len(features)} reliability features, {len(self.coef)} coefficients")
        z = self.bias + sum(c * x for c, x in zip(self.coef, features, strict=False))
        return float(1.0 / (1.0 + np.exp(-z)))


@dataclass(frozen=True)
class FusionConstants:
    """The few numbers of the zero-shot fusion. Defaults: the plain floored product of experts."""

    # Cosine gaps between a right and a wrong label are ~0.05-0.2; these temperatures turn them into
    # clear but not overconfident probabilities (vision reaches labels indirectly: softer).
    vision_temperature: float = 0.05
    text_temperature: float = 0.03
    # Each expert is mixed with this much of the uniform distribution, so one modality's near-zero tail
    # cannot veto what another is sure of.
    expert_floor: float = 0.1
    vision_calibration: float = 0.0  # 0: raw similarities; 1: minus each label's mean over the reference
    text_calibration: float = 0.0
    vision_reliability: Reliability = field(default_factory=Reliability)
    text_reliability: Reliability = field(default_factory=Reliability)
    # Sentiment: added to the neutral log-probability of the text's sentiment (< 0: commit to a polarity
    # unless the words are really neutral).
    sentiment_neutral_bias: float = 0.0
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FusionConstants:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fusion constants: {', '.join(unknown)}")
        values = dict(data)
        for name in ("vision_reliability", "text_reliability"):
            if name in values:
                r = values[name]
                values[name] = Reliability(float(r["bias"]), tuple(float(c) for c in r["coef"]))
        return cls(**values)


@lru_cache(maxsize=1)
def shipped_constants() -> FusionConstants:
    """The tuned constants shipped with the package (read once per process)."""
    text = resources.files("models").joinpath(CONSTANTS_RESOURCE).read_text(encoding="utf-8")
    return FusionConstants.from_json(json.loads(text))


@dataclass(frozen=True)
class ClassHierarchy:
    """The classifier's classes as the terms that say what each is, for the hierarchy bridge.

    terms: the distinct terms, each embedded once ("toucan", "bird", "animal", ...).
    members: per class, the indices of its terms (its name first, then its hypernyms nearest first).
    """

    terms: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]

    @classmethod
    def from_class_terms(cls, class_terms: Sequence[Sequence[str]]) -> ClassHierarchy:
        index: dict[str, int] = {}
        members = tuple(tuple(index.setdefault(t, len(index)) for t in terms) for terms in class_terms)
        if any(not m for m in members):
            raise ValueError("every class needs at least one term")
        return cls(tuple(index), members)


def hierarchy_class_scores(term_sims: F32, hierarchy: ClassHierarchy) -> F32:
    """(V, L) term-label cosines -> (C, L): each class's best term for each label.

    A class belongs to a label when any of the words that say what it is means that label: a toucan
    reaches "animals" through "animal", whatever its name's word neighbours ("cereal") are. A mean of the
    terms' embeddings (one text per class, the previous bridge) let the many specific bird words drown
    "animal". Discounting terms that many classes share (an IDF weight) was tried and dropped: it let the
    names' neighbours win again ("hen" -> food), and WordNet's own categories of the 676 ImageNet classes
    that fall under exactly one of ten everyday labels were matched 0.98 without it, 0.87 with it.
    """
    out = np.empty((len(hierarchy.members), term_sims.shape[1]), dtype=np.float32)
    for row, members in enumerate(hierarchy.members):
        out[row] = term_sims[list(members)].max(axis=0)
    return out


def imagenet_bridge_scores(class_probs: F32, class_scores: F32) -> F32:
    """(T, C) frame class probabilities and (C, L) class-label scores -> (T, L) frame-label scores: the
    mean over each frame's top classes, weighted by their probability."""
    if class_probs.shape[0] == 0:
        return np.zeros((0, class_scores.shape[1]), dtype=np.float32)
    top = np.argsort(class_probs, axis=1)[:, -TOP_CLASSES:]
    weights = np.take_along_axis(class_probs, top, axis=1)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("tk,tkl->tl", weights, class_scores[top]).astype(np.float32)


def joint_similarity(image_embeddings: F32, label_embeddings: F32) -> F32:
    """CLIP-style: (T, D) image and (L, D) label embeddings in one space -> (T, L) cosines."""
    return (image_embeddings @ label_embeddings.T).astype(np.float32)


def label_bias(reference_embeddings: F32, label_embeddings: F32) -> F32:
    """(L,) each label's mean cosine to the (R, D) reference set: how much it attracts anything."""
    if reference_embeddings.shape[0] == 0:
        return np.zeros((label_embeddings.shape[0],), dtype=np.float32)
    return (reference_embeddings @ label_embeddings.T).mean(axis=0).astype(np.float32)


def log_softmax(scores: F32, temperature: float) -> F32:
    """Log-probabilities along the last axis of scores / temperature."""
    scaled = scores.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    return (scaled - np.log(np.exp(scaled).sum(axis=-1, keepdims=True))).astype(np.float32)


def floored(log_probs: F32, floor: float) -> F32:
    """log((1 - floor) p + floor / L): the distribution mixed with a share of the uniform one."""
    size = log_probs.shape[-1]
    return np.log((1 - floor) * np.exp(log_probs.astype(np.float64)) + floor / size).astype(np.float32)


def weighted_product(experts: Sequence[tuple[F32, float] | None], size: int, floor: float) -> F32:
    """Normalised product of the available (L,) log-distributions, each floored and raised to its weight;
    uniform when none is available. Takes and returns log-probabilities."""
    present = [e for e in experts if e is not None]
    if not present:
        return np.full((size,), -np.log(size), dtype=np.float32)
    total = np.sum([weight * floored(lp, floor).astype(np.float64) for lp, weight in present], axis=0)
    return log_softmax(np.asarray(total, dtype=np.float32), 1.0)


def product_of_experts(log_probs: Sequence[F32 | None], size: int, floor: float = 0.1) -> F32:
    """The unweighted floored product (every available expert fully trusted)."""
    return weighted_product([None if lp is None else (lp, 1.0) for lp in log_probs], size, floor)


def text_reliability_features(avg_logprob: float, no_speech_prob: float, words: int) -> tuple[float, ...]:
    return (float(avg_logprob), float(no_speech_prob), float(np.log1p(max(words, 0))))


def vision_reliability_features(class_probs: F32) -> tuple[float, ...]:
    """(top class probability, entropy in nats) of the frames' mean ImageNet distribution."""
    mean = class_probs.astype(np.float64).mean(axis=0)
    mean = mean / max(float(mean.sum()), 1e-12)
    entropy = float(-(mean * np.log(np.clip(mean, 1e-12, 1.0))).sum())
    return (float(mean.max()), entropy)


def text_sentiment_prior(text: SentimentScores | None, neutral_bias: float) -> SentimentScores:
    """The text's sentiment with `neutral_bias` added to its neutral log-probability; uniform (read as
    neutral) without speech. The audio tone is reported but not used: it pulled polar speech to neutral."""
    if text is None:
        third = 1.0 / len(SENTIMENTS)
        return SentimentScores(probs=(third, third, third), source="none")
    logs = np.log(np.clip(np.asarray(text.probs, dtype=np.float64), 1e-6, 1.0))
    logs[SENTIMENTS.index("neutral")] += neutral_bias
    probs = np.exp(log_softmax(logs.astype(np.float32), 1.0))
    return SentimentScores(probs=(float(probs[0]), float(probs[1]), float(probs[2])), source="fused")


def combine_sentiments(scores: Sequence[SentimentScores | None]) -> SentimentScores:
    """Product of the available sentiment distributions; uniform (label neutral) when none is available."""
    present = [s for s in scores if s is not None]
    if not present:
        third = 1.0 / len(SENTIMENTS)
        return SentimentScores(probs=(third, third, third), source="none")
    logs = [np.log(np.clip(np.asarray(s.probs, dtype=np.float64), 1e-6, 1.0)) for s in present]
    probs = np.exp(log_softmax(np.asarray(np.sum(logs, axis=0), dtype=np.float32), 1.0))
    return SentimentScores(probs=(float(probs[0]), float(probs[1]), float(probs[2])), source="fused")
