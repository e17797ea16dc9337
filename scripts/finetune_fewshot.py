"""`reelsense finetune` with the few-shot learner (the default): cross-validate, fit, save, report.

Each labelled clip becomes its whole-video pooled embeddings (models/fewshot.py) and its zero-shot
priors (`Predictor.head_inputs`, the untrained head's logits); `models/fewshot_fit.py` chooses and fits
the learner by repeated stratified k-fold over all clips. The checkpoint is the untrained attention
head (its answer is the priors) plus `fewshot.npz`, so `--head` loads it like any head.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from models.fewshot import F32, FewShotModel, Pooled, pool_video
from models.training import MISSING
from models.types import SENTIMENTS
from scripts.finetune_data import LabelledVideo, report

if TYPE_CHECKING:
    from models.fewshot_fit import FitOptions, TaskFit
    from models.labels import LabelSet
    from models.predictor import Predictor


@dataclass(frozen=True)
class FewShotData:
    """N clips ready for the learner: pooled features, zero-shot logits, targets, fold groups."""

    pooled: Pooled
    category_prior: F32  # (N, L)
    sentiment_prior: F32  # (N, 3)
    category: npt.NDArray[np.int64]  # (N,) MISSING where unlabelled
    sentiment: npt.NDArray[np.int64]
    groups: list[str] | None  # None: every clip is its own group
    wheres: list[str]


def fewshot_data(predictor: Predictor, videos: Sequence[LabelledVideo], labels: LabelSet) -> FewShotData:
    """The learner's view of the videos; a category outside `labels` is reported and dropped."""
    dims = predictor.pooled_dims()
    pooled, cat_prior, sent_prior, cats, sents, groups, wheres = [], [], [], [], [], [], []
    for item in videos:
        category = item.row.category
        if category is not None and category not in labels.names:
            report(item.row.where, f"category {category!r} is not in the label set")
            continue
        inputs = predictor.head_inputs(item.video.encoded, labels)
        cat_prior.append(inputs.category_prior[0].numpy())
        sent_prior.append(inputs.sentiment_prior[0].numpy())
        pooled.append(pool_video(item.video.encoded, dims))
        cats.append(MISSING if category is None else labels.names.index(category))
        sents.append(MISSING if item.row.sentiment is None else SENTIMENTS.index(item.row.sentiment))
        groups.append(item.row.group or f"clip:{item.row.source}")
        wheres.append(item.row.where)
    if not pooled:
        raise ValueError("finetune: no usable labelled videos")
    has_groups = any(v.row.group for v in videos)
    return FewShotData(
        Pooled.stack(pooled),
        np.stack(cat_prior).astype(np.float32),
        np.stack(sent_prior).astype(np.float32),
        np.asarray(cats, dtype=np.int64),
        np.asarray(sents, dtype=np.int64),
        groups if has_groups else None,
        wheres,
    )


def fit(data: FewShotData, labels: LabelSet, options: FitOptions) -> tuple[FewShotModel, dict[str, TaskFit]]:
    from models.fewshot_fit import fit_fewshot

    return fit_fewshot(
        data.pooled,
        labels.names,
        (data.category_prior, data.sentiment_prior),
        (data.category, data.sentiment),
        data.groups,
        options,
    )


def fewshot_probs(model: FewShotModel | None, data: FewShotData) -> tuple[F32, F32]:
    """(N, L) category and (N, 3) sentiment probabilities of the whole videos (zero-shot: model None)."""
    category, sentiment = data.category_prior, data.sentiment_prior
    if model is not None:
        category, sentiment = model.adjust(category, sentiment, data.pooled)
    return _softmax(category), _softmax(sentiment)


def metrics(model: FewShotModel | None, data: FewShotData, names: Sequence[str]) -> dict[str, Any]:
    """The same metrics as models.training.evaluate, for the learner on the whole videos."""
    from models.training import classification_metrics, score

    category, sentiment = fewshot_probs(model, data)
    result: dict[str, Any] = {}
    for task, probs, truth, task_names in (
        ("category", category, data.category, names),
        ("sentiment", sentiment, data.sentiment, SENTIMENTS),
    ):
        rows = truth != MISSING
        if rows.any():
            result[task] = classification_metrics(truth[rows], probs[rows].argmax(-1), task_names)
    result["score"] = score(result)
    return result


def cv_report(fits: dict[str, TaskFit], names: Sequence[str]) -> dict[str, Any]:
    """Per task: the folds, both heads' accuracy mean and spread, the choice, out-of-fold confusions."""
    from models.training import classification_metrics

    out = {}
    for task, task_fit in fits.items():
        task_names = names if task == "category" else SENTIMENTS
        entry = task_fit.report()
        for head in ("zero_shot", "chosen"):
            predicted = task_fit.oof[head]
            rows = predicted != MISSING
            key = "fine_tuned" if head == "chosen" else head
            entry[key]["out_of_fold"] = classification_metrics(
                task_fit.truth[rows], predicted[rows], task_names
            )
        out[task] = entry
    return out


def print_cv(cv: dict[str, Any]) -> None:
    for task, entry in cv.items():
        zs, ft = entry["zero_shot"], entry["fine_tuned"]
        print(
            f"{task}: {entry['folds']}-fold x {entry['repeats']} cross-validation over {entry['clips']} "
            f"clips ({entry['candidates']} candidates, the same folds for each): "
            f"zero-shot {zs['accuracy_mean']:.3f} ± {zs['accuracy_std']:.3f}, "
            f"fine-tuned {ft['accuracy_mean']:.3f} ± {ft['accuracy_std']:.3f}; "
            f"chose {_brief(entry['chosen'])}",
            file=sys.stderr,
            flush=True,
        )


def _brief(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _softmax(logits: F32) -> F32:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def save(
    directory: Path,
    predictor: Predictor,
    labels: LabelSet,
    model: FewShotModel,
    encoder_specs: dict[str, str],
    metrics_: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """The untrained attention head (answer = priors) and the learner, one checkpoint for --head."""
    from models.checkpoint import save_head
    from models.fewshot import save_fewshot
    from models.training import fresh_head

    config = predictor.head.config
    entry = save_fewshot(directory, model)
    save_head(
        directory,
        fresh_head(config, 0),
        config,
        labels.names,
        encoder_specs,
        metrics=metrics_,
        extra={**extra, "fewshot": entry},
    )
