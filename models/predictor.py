"""From encoded features to the answer: zero-shot priors, the fusion head, segments and evidence.

`Predictor.predict(encoded, labels)` is the postprocess half of the analysis: it needs no media, only an
`EncodedVideo`, so the same code serves the in-process analyzer, the Ray engine and fine-tuning's cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from models.checkpoint import load_head
from models.fewshot import FewShotModel, Pooled, fewshot_evidence, load_fewshot, pool_video
from models.fusion import FusionConfig, FusionHead, FusionInputs, collate, modality_ablation
from models.labels import LabelSet
from models.types import (
    F32,
    SENTIMENTS,
    EncodedVideo,
    LabelScore,
    SegmentResult,
    SentimentResult,
    SentimentScores,
    VisionOutput,
)
from models.wordnet import imagenet_class_terms, imagenet_class_texts
from models.zero_shot import (
    ClassHierarchy,
    FusionConstants,
    hierarchy_class_scores,
    imagenet_bridge_scores,
    joint_similarity,
    label_bias,
    log_softmax,
    shipped_constants,
    text_reliability_features,
    text_sentiment_prior,
    vision_reliability_features,
    weighted_product,
)

TOP_MOMENTS = 5
TOP_VISUAL_CLASSES = 5


class TextEmbedder(Protocol):
    spec: Any  # a models.specs.ModelSpec; str() gives the spec string

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> F32: ...


class VisionModel(Protocol):
    spec: Any

    @property
    def dim(self) -> int: ...

    @property
    def joint_space(self) -> bool: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def encode_text(self, texts: Sequence[str]) -> F32: ...


@dataclass(frozen=True)
class PredictionParts:
    category: LabelScore
    sentiment: SentimentResult
    segments: tuple[SegmentResult, ...]
    evidence: dict[str, Any]


@dataclass(frozen=True)
class _Priors:
    """Zero-shot scores of one span of a video over L labels."""

    category: F32  # (L,) log-probabilities, all modalities
    vision: F32 | None  # (L,) log-probabilities from the frames alone
    text: F32 | None  # (L,) from the transcript alone
    sentiment: SentimentScores
    text_sentiment: SentimentScores | None
    weights: dict[str, float]  # how much each present modality was trusted, 0-1


@dataclass(frozen=True)
class _Span:
    """What one span of a video (the whole, or a window) gives the priors."""

    frame_sims: F32  # (T, L) calibrated frame-label similarities
    class_probs: F32 | None  # (T, C) ImageNet probabilities of those frames, None for CLIP
    text_sims: F32  # (S, L) calibrated text-label similarities; S == 0 without speech
    text_quality: F32 | None  # (S, 3) Whisper's confidence of those rows, None: unknown
    text_sentiments: Sequence[SentimentScores | None]


class Predictor:
    """Holds the head and the label/class embedding caches of one analyzer process."""

    def __init__(
        self,
        head: FusionHead,
        *,
        name: str,
        fine_tuned: bool,
        vision: VisionModel,
        text: TextEmbedder,
        cache_dir: Path,
        default_labels: LabelSet | None = None,
        constants: FusionConstants | None = None,
        fewshot: FewShotModel | None = None,
        bridge: TextEmbedder | None = None,
    ) -> None:
        self.head = head.eval()
        self.fewshot = fewshot  # a few-shot learner blended into the head's logits (models/fewshot.py)
        self.constants = constants or shipped_constants()
        # A fine-tuned head's own labels: used when the caller gives none (not the taxonomy).
        self.default_labels = default_labels
        self.name = name
        self.fine_tuned = fine_tuned
        self.vision = vision
        self.text = text
        # The sentence encoder of the vision bridge (class terms and labels); the text encoder when None.
        self.bridge = bridge or text
        self.cache_dir = cache_dir
        self._labels: dict[LabelSet, tuple[F32, F32]] = {}
        self._biases: dict[LabelSet, F32] = {}
        self._class_embeddings: F32 | None = None
        self._hierarchy: ClassHierarchy | None = None
        self._term_embeddings: F32 | None = None
        self._class_scores: dict[LabelSet, F32] = {}

    def label_embeddings(self, labels: LabelSet) -> tuple[F32, F32]:
        """(text-space, vision-space) (L, D) embeddings of `labels`, computed once per label set. The vision
        space is CLIP's joint space, or the bridge encoder's for a classifier."""
        if labels not in self._labels:
            text_space = labels.embed(self.text.encode)
            if self.vision.joint_space:
                vision_space = labels.embed(self.vision.encode_text)
            elif self.bridge is self.text:
                vision_space = text_space
            else:
                vision_space = labels.embed(self.bridge.encode)
            self._labels[labels] = (text_space, vision_space)
        return self._labels[labels]

    def label_biases(self, labels: LabelSet) -> F32:
        """(L,) each label's mean text-space cosine to the class texts (its pull on anything), cached."""
        if labels not in self._biases:
            reference = self.class_embeddings() if self.vision.class_names else np.zeros((0, 1), np.float32)
            self._biases[labels] = label_bias(reference, self.label_embeddings(labels)[0])
        return self._biases[labels]

    def similarities(self, encoded: EncodedVideo, labels: LabelSet) -> tuple[F32, F32]:
        """Calibrated (T, L) frame-label and (S, L) text-label similarities."""
        text_space = self.label_embeddings(labels)[0]
        c = self.constants
        frame_sims = self._frame_similarity(encoded.vision, labels)
        text_sims = encoded.text_embeddings @ text_space.T
        if not encoded.vision.joint_space and frame_sims.shape[0]:
            frame_sims = frame_sims - c.vision_calibration * self.class_label_scores(labels).mean(axis=0)
        if text_sims.shape[0]:
            text_sims = text_sims - c.text_calibration * self.label_biases(labels)
        return frame_sims.astype(np.float32), text_sims.astype(np.float32)

    def class_embeddings(self) -> F32:
        """(C, D) text-encoder embeddings of the classifier's class texts, cached on disk (1000 texts): the
        broad reference the transcript's label similarities are calibrated against."""
        if self._class_embeddings is None:
            style, texts = class_texts(self.vision.class_names)
            names = "\n".join([str(self.text.spec), style, *texts])
            key = hashlib.sha256(names.encode()).hexdigest()[:16]
            self._class_embeddings = self._cached_array(
                f"class-embeddings-{key}.npy", lambda: self.text.encode(list(texts))
            )
        return self._class_embeddings

    def class_hierarchy(self) -> ClassHierarchy:
        """The classifier's classes as terms: WordNet names and hypernyms for ImageNet-1k, else bare names
        (built once)."""
        if self._hierarchy is None:
            names = self.vision.class_names
            if names == imagenet_class_texts("bare"):
                self._hierarchy = ClassHierarchy.from_class_terms(imagenet_class_terms())
            else:
                self._hierarchy = ClassHierarchy.from_class_terms([(name,) for name in names])
        return self._hierarchy

    def term_embeddings(self) -> F32:
        """(V, D) bridge-encoder embeddings of the hierarchy's terms, cached on disk (~2,000 texts)."""
        if self._term_embeddings is None:
            hierarchy = self.class_hierarchy()
            spec = str(getattr(self.bridge, "spec", type(self.bridge).__name__))
            key = hashlib.sha256("\n".join([spec, *hierarchy.terms]).encode()).hexdigest()[:16]
            self._term_embeddings = self._cached_array(
                f"class-terms-{key}.npy", lambda: self.bridge.encode(list(hierarchy.terms))
            )
        return self._term_embeddings

    def class_label_scores(self, labels: LabelSet) -> F32:
        """(C, L) how much each classifier class belongs to each label (models/zero_shot.py), cached."""
        if labels not in self._class_scores:
            hierarchy = self.class_hierarchy()
            term_sims = self.term_embeddings() @ self.label_embeddings(labels)[1].T
            self._class_scores[labels] = hierarchy_class_scores(term_sims, hierarchy)
        return self._class_scores[labels]

    def _cached_array(self, name: str, compute: Callable[[], F32]) -> F32:
        path = self.cache_dir / name
        if path.is_file():
            return np.load(path).astype(np.float32)
        array = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{id(self)}.tmp.npy")
        np.save(tmp, array)
        tmp.replace(path)  # atomic: a concurrent worker reads a whole file or none
        return array

    def head_inputs(self, encoded: EncodedVideo, labels: LabelSet) -> FusionInputs:
        """The whole-video head input (a batch of one, zero-shot priors included): what training feeds."""
        text_space = self.label_embeddings(labels)[0]
        frame_sims, text_sims = self.similarities(encoded, labels)
        whole = self._priors(_span(encoded, frame_sims, text_sims, None))
        return self._inputs(encoded, whole, text_space, None)

    def predict(self, encoded: EncodedVideo, labels: LabelSet, segment_s: float) -> PredictionParts:
        if self.fewshot is not None:
            self.fewshot.check_labels(labels.names)
        text_space = self.label_embeddings(labels)[0]
        frame_sims, text_sims = self.similarities(encoded, labels)  # (T, L), (S, L)
        whole = self._priors(_span(encoded, frame_sims, text_sims, None))
        windows = _windows(encoded.duration_s, segment_s)
        inputs = [self._inputs(encoded, whole, text_space, None)]
        spans: list[tuple[np.ndarray, list[int]] | None] = [None]
        for start, end in windows:
            frames = (encoded.frame_times_s >= start) & (encoded.frame_times_s < end)
            rows = _overlapping_rows(encoded.text_spans_s, start, end)
            priors = self._priors(_span(encoded, frame_sims, text_sims, (frames, rows)))
            inputs.append(self._inputs(encoded, priors, text_space, (frames, rows)))
            spans.append((frames, rows))
        batch = collate(inputs)
        with torch.inference_mode():
            out = self.head(batch.to(_device(self.head)))
        category_logits = out.category_logits.float().cpu().numpy()
        sentiment_logits = out.sentiment_logits.float().cpu().numpy()
        pooled = None
        if self.fewshot is not None:  # the same learner on the whole video and on each window
            pooled = Pooled.stack([pool_video(encoded, self.pooled_dims(), s) for s in spans])
            category_logits, sentiment_logits = self.fewshot.adjust(category_logits, sentiment_logits, pooled)
        category, sentiment = _softmax(category_logits), _softmax(sentiment_logits)
        segments = tuple(
            SegmentResult(
                start, end, _label_score(labels.names, category[i + 1]), _sentiment_score(sentiment[i + 1])
            )
            for i, (start, end) in enumerate(windows)
        )
        evidence = self._evidence(encoded, labels, whole, frame_sims, text_sims, int(category[0].argmax()))
        if self.fewshot is not None and pooled is not None:
            whole_logits = out.category_logits.float().cpu().numpy()[:1]
            evidence["head"] = fewshot_evidence(self.fewshot, self.name, labels.names, whole_logits, pooled)
        elif self.fine_tuned:
            evidence["head"] = self._head_evidence(batch, out, labels)
        by_modality = {
            "text": None if whole.text_sentiment is None else dict(whole.text_sentiment.as_dict()),
            "audio": None if encoded.audio_tone is None else dict(encoded.audio_tone.as_dict()),
            "prior": dict(whole.sentiment.as_dict()),
        }
        fused = _sentiment_score(sentiment[0])
        return PredictionParts(
            category=_label_score(labels.names, category[0]),
            sentiment=SentimentResult(fused.label, fused.confidence, fused.scores, by_modality=by_modality),
            segments=segments,
            evidence=evidence,
        )

    def pooled_dims(self) -> dict[str, int]:
        """Embedding sizes of the pooled features the few-shot learner reads (absent modality: zeros)."""
        c = self.head.config
        return {"vision": c.vision_dim, "text": c.text_dim, "audio": c.audio_dim}

    def _frame_similarity(self, vision: VisionOutput, labels: LabelSet) -> F32:
        if vision.embeddings.shape[0] == 0:
            return np.zeros((0, len(labels.names)), dtype=np.float32)
        if vision.joint_space:
            return joint_similarity(vision.embeddings, self.label_embeddings(labels)[1])
        assert vision.class_probs is not None, "a non-joint vision encoder must give class probabilities"
        return imagenet_bridge_scores(vision.class_probs, self.class_label_scores(labels))

    def _priors(self, span: _Span) -> _Priors:
        """Each modality's distribution, its reliability weight, and their weighted product."""
        c = self.constants
        size = span.frame_sims.shape[1]
        vision = text = None
        weights: dict[str, float] = {}
        if len(span.frame_sims):
            vision = log_softmax(span.frame_sims.mean(axis=0), c.vision_temperature)
            features = () if span.class_probs is None else vision_reliability_features(span.class_probs)
            weights["vision"] = c.vision_reliability.weight(features) if features else 1.0
        if len(span.text_sims):
            text = log_softmax(span.text_sims.mean(axis=0), c.text_temperature)
            q = span.text_quality
            weights["text"] = 1.0 if q is None else c.text_reliability.weight(_text_features(q))
        experts = [
            None if vision is None else (vision, weights["vision"]),
            None if text is None else (text, weights["text"]),
        ]
        present = [s for s in span.text_sentiments if s is not None]
        text_sentiment = _mean_sentiment(present) if present else None
        return _Priors(
            category=weighted_product(experts, size, c.expert_floor),
            vision=vision,
            text=text,
            sentiment=text_sentiment_prior(text_sentiment, c.sentiment_neutral_bias),
            text_sentiment=text_sentiment,
            weights=weights,
        )

    def _inputs(
        self,
        encoded: EncodedVideo,
        priors: _Priors,
        label_space: F32,
        window: tuple[np.ndarray, list[int]] | None,
    ) -> FusionInputs:
        frames = slice(None) if window is None else window[0]
        rows: Any = slice(None) if window is None else window[1]
        return FusionInputs.from_numpy(
            self.head.config,
            category_prior=priors.category,
            sentiment_prior=np.log(np.clip(np.asarray(priors.sentiment.probs, dtype=np.float32), 1e-6, 1.0)),
            label_embeddings=label_space,
            vision=encoded.vision.embeddings[frames],
            vision_times=encoded.frame_times_s[frames].astype(np.float32),
            audio=encoded.audio_embedding,
            prosody=encoded.prosody,
            text=encoded.text_embeddings[rows],
            text_times=encoded.text_spans_s[rows, 0].astype(np.float32),
        )

    def _evidence(
        self,
        encoded: EncodedVideo,
        labels: LabelSet,
        whole: _Priors,
        frame_sims: F32,
        text_sims: F32,
        chosen: int,
    ) -> dict[str, Any]:
        """Which modality and which moments point at the chosen label, from the zero-shot scores."""
        moments: list[dict[str, Any]] = [
            {
                "modality": "vision",
                "time_s": round(float(encoded.frame_times_s[i]), 3),
                "score": float(frame_sims[i, chosen]),
            }
            for i in range(frame_sims.shape[0])
        ]
        moments += [
            {
                "modality": "text",
                "time_s": round(float(encoded.text_spans_s[i, 0]), 3),
                "end_s": round(float(encoded.text_spans_s[i, 1]), 3),
                "score": float(text_sims[i, chosen]),
            }
            for i in range(1, text_sims.shape[0])
        ]
        moments.sort(key=lambda m: -m["score"])
        return {
            "category_by_modality": {
                "vision": _top_labels(labels.names, whole.vision),
                "text": _top_labels(labels.names, whole.text),
            },
            # How much each present modality was trusted on this clip (0-1; see models/zero_shot.py).
            "modality_weights": {name: round(w, 4) for name, w in whole.weights.items()},
            "moments": [{**m, "score": round(m["score"], 4)} for m in moments[:TOP_MOMENTS]],
            "visual_classes": self._visual_classes(encoded.vision),
            "head": {"kind": "fine-tuned" if self.fine_tuned else "zero-shot", "name": self.name},
        }

    def _visual_classes(self, vision: VisionOutput) -> list[dict[str, Any]]:
        if vision.class_probs is None or vision.class_probs.shape[0] == 0:
            return []
        mean = vision.class_probs.mean(axis=0)
        top = np.argsort(mean)[::-1][:TOP_VISUAL_CLASSES]
        return [{"name": vision.class_names[i], "probability": round(float(mean[i]), 4)} for i in top]

    def _head_evidence(self, batch: FusionInputs, out: Any, labels: LabelSet) -> dict[str, Any]:
        """For a trained head: last-layer attention of the whole-video row, and modality ablation."""
        whole = batch.to(_device(self.head))
        first = FusionInputs(
            **{k: v[:1] if k != "label_embeddings" else v for k, v in whole.__dict__.items()}
        )
        ablation = modality_ablation(self.head, first)
        full = ablation["full"].category[0]
        chosen = int(full.argmax())
        return {
            "kind": "fine-tuned",
            "name": self.name,
            "attention": [
                {
                    "modality": e.modality,
                    "index": e.index,
                    "time_s": e.time_s,
                    "weight": round(e.attention, 4),
                }
                for e in out.evidence(0)[:TOP_MOMENTS]
            ],
            "without_modality": {
                name: round(float(probs.category[0, chosen] - full[chosen]), 4)
                for name, probs in ablation.items()
                if name != "full"
            },
            "label": labels.names[chosen],
        }


def class_texts(class_names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(style, texts) the bridge embeds for a classifier's classes: for ImageNet-1k each class with its
    WordNet hypernym path and domain (models/wordnet.py: "toucan, piciform bird, bird, ... (animal)"), so
    a class lands near its category rather than near its name's word neighbours; any other class list as
    bare names. No "a photo of a ..." template: it pulled every class towards labels about pictures (art &
    crafts) and cost the vision prior two of ten test pictures."""
    if class_names == imagenet_class_texts("bare"):
        return "wordnet-path", imagenet_class_texts("path")
    return "bare-names", class_names


def load_predictor(
    head_dir: str | None,
    *,
    vision: VisionModel,
    text: TextEmbedder,
    speech: tuple[str, int],
    cache_dir: Path,
    device: str,
    bridge: TextEmbedder | None = None,
) -> Predictor:
    """The zero-shot head (untrained: its answer is the priors') or a fine-tuned one from `head_dir`."""
    if head_dir is None:
        torch.manual_seed(0)  # the residual is zero-initialised; the seed only fixes the unused weights
        config = FusionConfig(
            vision_dim=vision.dim, audio_dim=speech[1], text_dim=text.dim, label_dim=text.dim
        )
        return Predictor(
            FusionHead(config).to(device),
            name="zero-shot",
            fine_tuned=False,
            vision=vision,
            text=text,
            cache_dir=cache_dir,
            bridge=bridge,
        )
    expected = {"vision": (str(vision.spec), vision.dim), "text": (str(text.spec), text.dim), "audio": speech}
    loaded = load_head(head_dir, expected_encoders=expected, device=device)
    return Predictor(
        loaded.head,
        name=Path(head_dir).name,
        fine_tuned=True,
        vision=vision,
        text=text,
        cache_dir=cache_dir,
        bridge=bridge,
        default_labels=head_labels(loaded.label_names, loaded.extra),
        fewshot=load_fewshot(head_dir, loaded.extra),
    )


def head_labels(names: Sequence[str], extra: dict[str, Any] | None) -> LabelSet | None:
    """The label set a head was fine-tuned on (with its prompts when the checkpoint kept them)."""
    if len(names) < 2:
        return None
    prompts = (extra or {}).get("label_prompts")
    if isinstance(prompts, list) and len(prompts) == len(names):
        return LabelSet(tuple(names), tuple(tuple(str(x) for x in p) for p in prompts), source="head")
    return LabelSet(tuple(names), tuple((n, f"a video about {n}") for n in names), source="head")


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.ascontiguousarray(logits)).softmax(-1).numpy()


def _device(head: FusionHead) -> torch.device:
    return next(head.parameters()).device


def _windows(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    if duration_s <= 0:
        return []
    count = max(1, int(np.ceil(duration_s / segment_s - 1e-6)))
    return [(i * segment_s, min(duration_s, (i + 1) * segment_s)) for i in range(count)]


def _overlapping_rows(spans: np.ndarray, start: float, end: float) -> list[int]:
    """Transcript segment rows (1..; row 0 is the whole transcript) overlapping [start, end)."""
    return [i for i in range(1, spans.shape[0]) if spans[i, 0] < end and spans[i, 1] > start]


def _span(
    encoded: EncodedVideo,
    frame_sims: F32,
    text_sims: F32,
    window: tuple[np.ndarray, list[int]] | None,
) -> _Span:
    """The whole video (window None: every frame, text row 0) or one window's frames and text rows."""
    frames: Any = slice(None) if window is None else window[0]
    rows: Any = [0] if window is None else window[1]
    rows = [r for r in rows if r < text_sims.shape[0]]
    probs = encoded.vision.class_probs
    quality = encoded.text_quality
    return _Span(
        frame_sims=frame_sims[frames],
        class_probs=None if probs is None else probs[frames],
        text_sims=text_sims[rows],
        text_quality=None if quality is None or not len(quality) else quality[rows],
        text_sentiments=[encoded.text_sentiment[i] for i in rows],
    )


def _text_features(quality: F32) -> tuple[float, ...]:
    """Reliability features of several text rows: word-weighted confidence, all their words."""
    words = quality[:, 2].astype(np.float64)
    w = np.maximum(words, 1.0)
    avg_logprob = float((quality[:, 0] * w).sum() / w.sum())
    no_speech = float((quality[:, 1] * w).sum() / w.sum())
    return text_reliability_features(avg_logprob, no_speech, int(words.sum()))


def _mean_sentiment(scores: Sequence[SentimentScores]) -> SentimentScores:
    mean = np.mean([s.probs for s in scores], axis=0)
    return SentimentScores(probs=(float(mean[0]), float(mean[1]), float(mean[2])), source="text")


def _label_score(names: Sequence[str], probs: np.ndarray) -> LabelScore:
    best = int(probs.argmax())
    return LabelScore(
        names[best], float(probs[best]), {n: float(p) for n, p in zip(names, probs, strict=True)}
    )


def _sentiment_score(probs: np.ndarray) -> LabelScore:
    scores = SentimentScores(probs=(float(probs[0]), float(probs[1]), float(probs[2])), source="head")
    return LabelScore(scores.label, scores.confidence, dict(zip(SENTIMENTS, scores.probs, strict=True)))


def _top_labels(names: Sequence[str], log_probs: F32 | None, k: int = 3) -> list[dict[str, Any]] | None:
    if log_probs is None:
        return None
    probs = np.exp(log_probs)
    return [
        {"label": names[i], "probability": round(float(probs[i]), 4)} for i in np.argsort(probs)[::-1][:k]
    ]
