"""A few-shot learner on frozen, pooled per-modality embeddings, blended with the zero-shot scores.

With a handful of labelled videos per class the attention head has far more freedom than the examples
can pin down. This learner adds to the head's logits (for a zero-shot head: the prior log-probabilities)
a score computed from three pooled embeddings of the span (mean frame embedding, whole-transcript
embedding, Whisper audio embedding), each L2-normalised, centred on the training clips' mean and
normalised again (EfficientNet features are non-negative: uncentred, every pair has a cosine near 0.8):

    logits = prior_weight * head_logits + alpha * score(features)

with `score` one of
    prototype  cosine to each class's mean embedding (per modality, mixed by `weights`)
    cache      Tip-Adapter's key-value cache: mean over a class's clips of exp(-beta (1 - cosine))
    linear     a ridge-regularised multinomial logistic probe on the weighted, concatenated embeddings,
               fitted with the prior as a fixed offset (alpha is 1)

Fitting and the choice of method are in `models/fewshot_fit.py`; this module only applies a fitted
learner and saves/loads it (`fewshot.npz` next to the head's checkpoint, arrays only, no pickle).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import ErrorCode, MediaError
from models.types import F32, EncodedVideo

MODALITIES = ("vision", "text", "audio")
METHODS = ("prototype", "cache", "linear")
FILE_NAME = "fewshot.npz"
EPS = 1e-8


@dataclass(frozen=True)
class Pooled:
    """Pooled embeddings of B spans, one (B, D) array per modality: rows L2-normalised, zero where absent."""

    arrays: dict[str, F32]

    @property
    def size(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def rows(self, index: Sequence[int] | npt.NDArray[np.int64]) -> Pooled:
        return Pooled({m: a[np.asarray(index)] for m, a in self.arrays.items()})

    @staticmethod
    def stack(items: Sequence[Pooled]) -> Pooled:
        return Pooled({m: np.concatenate([i.arrays[m] for i in items]) for m in MODALITIES})


def _unit(x: npt.NDArray[Any]) -> F32:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > EPS, x / np.maximum(norm, EPS), 0.0).astype(np.float32)


def pool_video(
    encoded: EncodedVideo, dims: dict[str, int], window: tuple[npt.NDArray[np.bool_], list[int]] | None = None
) -> Pooled:
    """One span's pooled embeddings: the whole video (window None) or a window's frames and text rows.

    The audio embedding is the whole clip's in every window (Whisper pools it once per video).
    """
    frames = encoded.vision.embeddings if window is None else encoded.vision.embeddings[window[0]]
    rows = [0] if window is None else [r for r in window[1] if r < encoded.text_embeddings.shape[0]]
    text = encoded.text_embeddings[rows] if encoded.text_embeddings.shape[0] else np.zeros((0, 1))
    vectors = {
        "vision": frames.mean(axis=0) if len(frames) else None,
        "text": text.mean(axis=0) if len(text) else None,
        "audio": encoded.audio_embedding,
    }
    return Pooled(
        {m: _unit(np.zeros(dims[m], np.float32) if v is None else v)[None] for m, v in vectors.items()}
    )


@dataclass(frozen=True)
class Params:
    """One candidate: the method and its few hyper-parameters."""

    method: str  # one of METHODS
    weights: tuple[float, float, float]  # vision, text, audio mixing weights
    alpha: float = 1.0  # blend weight of the few-shot score (linear: 1, the probe has its own scale)
    beta: float = 0.0  # cache sharpness (cache only)
    prior_weight: float = 1.0  # multiplier of the head's (zero-shot) logits
    ridge: float = 0.0  # L2 penalty of the probe (linear only)

    def describe(self) -> dict[str, Any]:
        keep = {"method": self.method, "weights": list(self.weights), "prior_weight": self.prior_weight}
        extra = {"prototype": {"alpha": self.alpha}, "cache": {"alpha": self.alpha, "beta": self.beta}}
        return keep | extra.get(self.method, {"ridge": self.ridge})


@dataclass(frozen=True)
class TaskModel:
    """A fitted learner for one task (category or sentiment) over `classes` classes."""

    params: Params
    classes: int
    arrays: dict[str, F32] = field(default_factory=dict)  # prototypes, cache keys/values, or W and b

    def logits(self, head_logits: F32, features: Pooled) -> F32:
        """(B, classes) blended logits from the head's (B, classes) logits and B spans' features."""
        p = self.params
        return (p.prior_weight * head_logits + p.alpha * self.score(features)).astype(np.float32)

    def score(self, features: Pooled) -> F32:
        p, a = self.params, self.arrays
        if p.method == "linear":
            return (linear_features(features, p.weights) @ a["W"] + a["b"]).astype(np.float32)
        if p.method == "prototype":
            sims = {m: features.arrays[m] @ a[f"proto_{m}"].T for m in active(p.weights)}
            return mix(sims, p.weights)
        sims = {m: features.arrays[m] @ a[f"keys_{m}"].T for m in active(p.weights)}
        return cache_score(mix(sims, p.weights), a["values"], p.beta)


def active(weights: Sequence[float]) -> list[str]:
    return [m for m, w in zip(MODALITIES, weights, strict=True) if w > 0]


def mix(sims: dict[str, F32], weights: Sequence[float]) -> F32:
    """Weighted mean over modalities of per-modality (B, K) cosines."""
    w = dict(zip(MODALITIES, weights, strict=True))
    total = sum(w[m] for m in sims) or 1.0
    first = next(iter(sims.values()))
    out = np.zeros_like(first, dtype=np.float32)
    for m, s in sims.items():
        out += (w[m] / total) * s
    return out


def cache_score(sims: F32, values: F32, beta: float) -> F32:
    """Tip-Adapter's affinity exp(-beta (1 - cos)) against each key, averaged per class via `values`."""
    return (np.exp(-beta * (1.0 - sims)) @ values).astype(np.float32)


def linear_features(features: Pooled, weights: Sequence[float]) -> F32:
    """(B, sum D) the probe's input: each active modality scaled by sqrt(weight), concatenated."""
    parts = [np.sqrt(w) * features.arrays[m] for m, w in zip(MODALITIES, weights, strict=True) if w > 0]
    return np.concatenate(parts, axis=1).astype(np.float32)


@dataclass(frozen=True)
class FewShotModel:
    """The fitted learner of a checkpoint: centring, and one TaskModel per task it was trained for."""

    label_names: tuple[str, ...]
    centres: dict[str, F32]  # per modality (D,), the training clips' mean normalised embedding
    category: TaskModel | None
    sentiment: TaskModel | None

    def prepare(self, raw: Pooled) -> Pooled:
        """Centre and renormalise raw pooled rows; absent (zero) rows stay zero."""
        out = {}
        for m, a in raw.arrays.items():
            present = np.linalg.norm(a, axis=1, keepdims=True) > EPS
            out[m] = np.where(present, _unit(a - self.centres[m]), 0.0).astype(np.float32)
        return Pooled(out)

    def check_labels(self, names: Sequence[str]) -> None:
        """A learner knows its classes by position: another label set would be read as these labels."""
        if self.category is not None and tuple(names) != self.label_names:
            raise MediaError(
                ErrorCode.INVALID_LABELS,
                f"this fine-tuned head was trained on the labels {list(self.label_names)} and cannot score "
                f"{list(names)}; analyze without --labels (the head's labels are the default) or fine-tune "
                "a head on the new labels",
            )

    def adjust(self, category: F32, sentiment: F32, raw: Pooled) -> tuple[F32, F32]:
        """The head's (B, L) category and (B, 3) sentiment logits with the learner blended in."""
        features = self.prepare(raw)
        if self.category is not None:
            category = self.category.logits(category, features)
        if self.sentiment is not None:
            sentiment = self.sentiment.logits(sentiment, features)
        return category, sentiment

    def describe(self) -> dict[str, Any]:
        return {
            task: None if model is None else model.params.describe()
            for task, model in (("category", self.category), ("sentiment", self.sentiment))
        }


def fewshot_evidence(
    model: FewShotModel, name: str, labels: Sequence[str], head_logits: F32, pooled: Pooled
) -> dict[str, Any]:
    """The fitted learner's part in the whole-video answer: its method and, per modality, how much the
    chosen label's probability changes without that modality's embedding (the priors unchanged)."""
    whole = pooled.rows([0])
    sentiment = np.zeros((1, 3), np.float32)
    full = _probs(model.adjust(head_logits, sentiment, whole)[0])[0]
    chosen = int(full.argmax())
    without = {}
    for m in MODALITIES:
        masked = Pooled({k: np.zeros_like(a) if k == m else a for k, a in whole.arrays.items()})
        probs = _probs(model.adjust(head_logits, sentiment, masked)[0])[0]
        without[m] = round(float(probs[chosen] - full[chosen]), 4)
    return {
        "kind": "fine-tuned",
        "name": name,
        "learner": model.describe(),
        "label": labels[chosen],
        "without_modality": without,
    }


def _probs(logits: F32) -> F32:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def save_fewshot(directory: Path, model: FewShotModel) -> dict[str, Any]:
    """Write `fewshot.npz`; returns the entry for head.json's extra (file, sha256, parameters)."""
    arrays = {f"centre_{m}": c for m, c in model.centres.items()}
    meta: dict[str, Any] = {"file": FILE_NAME, "label_names": list(model.label_names)}
    for task, tm in (("category", model.category), ("sentiment", model.sentiment)):
        if tm is None:
            continue
        arrays |= {f"{task}__{k}": v for k, v in tm.arrays.items()}
        p = tm.params
        meta[task] = {
            "classes": tm.classes,
            "params": {
                "method": p.method, "weights": list(p.weights), "alpha": p.alpha, "beta": p.beta,
                "prior_weight": p.prior_weight, "ridge": p.ridge,
            },
        }  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    tmp = directory / (FILE_NAME + ".tmp")
    tmp.write_bytes(_npz_bytes(arrays))
    tmp.replace(path)  # atomic: a reader sees the old file or the new one
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return meta


def _npz_bytes(arrays: dict[str, F32]) -> bytes:
    """An .npz (np.load reads it) with fixed timestamps and order: same learner, same bytes and sha256."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def load_fewshot(directory: str | Path, extra: dict[str, Any] | None) -> FewShotModel | None:
    """The learner a checkpoint's extra["fewshot"] records (None: an attention head alone)."""
    meta = (extra or {}).get("fewshot")
    if not meta:
        return None
    path = Path(directory) / FILE_NAME
    if not path.is_file():
        raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"fusion head {directory}: {FILE_NAME} is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise MediaError(
            ErrorCode.MODEL_CHECKSUM_MISMATCH,
            f"{path} does not match the sha256 in head.json: the file is corrupt or was replaced",
        )
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k].astype(np.float32) for k in npz.files}
    tasks: dict[str, TaskModel | None] = {}
    for task in ("category", "sentiment"):
        entry = meta.get(task)
        if not entry:
            tasks[task] = None
            continue
        raw = dict(entry["params"])
        params = Params(**(raw | {"weights": tuple(float(w) for w in raw["weights"])}))
        prefix = f"{task}__"
        own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        tasks[task] = TaskModel(params, int(entry["classes"]), own)
    return FewShotModel(
        label_names=tuple(str(n) for n in meta["label_names"]),
        centres={m: arrays[f"centre_{m}"] for m in MODALITIES},
        category=tasks["category"],
        sentiment=tasks["sentiment"],
    )


def describe_json(model: FewShotModel) -> str:
    return json.dumps(model.describe(), sort_keys=True)
