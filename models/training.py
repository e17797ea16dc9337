"""Fine-tuning the fusion head on cached features: examples, batches, masked multi-task loss, the loop.

Every example is one video's whole-video head input (`Predictor.head_inputs`, zero-shot priors included)
with a category index and/or a sentiment index (-1 = not labelled). Training starts from a fresh head,
whose answer is exactly the priors, so the zero-shot model is both the starting point and the baseline.
Pure torch/numpy: no media, no encoders.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor

from models.fusion import FusionConfig, FusionHead, FusionInputs, collate
from models.types import SENTIMENTS

MISSING = -1  # a task not labelled on this example


@dataclass(frozen=True)
class Example:
    inputs: FusionInputs  # a batch of one (Predictor.head_inputs)
    category: int  # index into the label set, or MISSING
    sentiment: int  # index into models.types.SENTIMENTS, or MISSING


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    lr: float = 1e-3  # AdamW peak learning rate, cosine-decayed to 0 over all steps
    weight_decay: float = 0.01
    batch_size: int = 32
    patience: int = 8  # epochs without a better validation score before stopping
    seed: int = 0
    grad_clip: float = 1.0  # max gradient norm: a few tiny batches must not blow the residual up
    device: str = "cpu"


@dataclass(frozen=True)
class TrainResult:
    head: FusionHead  # the best epoch's weights, in eval mode
    history: list[dict[str, Any]]  # per epoch: train_loss, val_loss, val_score, val metrics
    best_epoch: int  # 1-based; 0 = no epoch beat the untrained head
    best_score: float


def seed_everything(seed: int) -> None:
    """Same seed, same weights: seeds every RNG and asks torch for deterministic kernels, one thread."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)  # warn_only: CUDA lacks a few
    # One thread: multi-threaded reductions may sum in another order from run to run.
    torch.set_num_threads(1)


def class_weights(targets: Sequence[int], num_classes: int) -> Tensor:
    """(num_classes,) inverse-frequency weights over labelled targets, mean 1 over seen classes."""
    counts = np.bincount([t for t in targets if t != MISSING], minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


@dataclass(frozen=True)
class Batch:
    inputs: FusionInputs  # collated: B rows, padded
    targets: tuple[Tensor, Tensor]  # (B,) category and (B,) sentiment indices, MISSING where unlabelled


def batches(examples: Sequence[Example], size: int, generator: torch.Generator | None) -> list[Batch]:
    """Examples collated into batches of `size` (shuffled when `generator` is given)."""
    order = torch.randperm(len(examples), generator=generator).tolist() if generator else range(len(examples))
    ordered = [examples[i] for i in order]
    return [_collate(ordered[i : i + size]) for i in range(0, len(ordered), size)]


def _collate(items: Sequence[Example]) -> Batch:
    targets = (
        torch.tensor([e.category for e in items], dtype=torch.long),
        torch.tensor([e.sentiment for e in items], dtype=torch.long),
    )
    return Batch(collate([e.inputs for e in items]), targets)


def masked_loss(
    out_category: Tensor,
    out_sentiment: Tensor,
    targets: tuple[Tensor, Tensor],
    weights: tuple[Tensor | None, Tensor | None],
) -> Tensor:
    """Sum of the two tasks' weighted cross-entropies, each over the rows labelled for it."""
    total = out_category.new_zeros(())
    for logits, target, weight in zip((out_category, out_sentiment), targets, weights, strict=True):
        rows = target != MISSING
        if rows.any():
            total = total + F.cross_entropy(logits[rows], target[rows], weight=weight)
    return total


def predict(head: FusionHead, batched: Sequence[Batch], device: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(category probs (N, L), sentiment probs (N, 3), mean loss) over collated batches (loss unweighted)."""
    head.eval()
    cats, sents, losses, count = [], [], 0.0, 0
    with torch.inference_mode():
        for batch in batched:
            out = head(batch.inputs.to(device))
            targets = (batch.targets[0].to(device), batch.targets[1].to(device))
            loss = masked_loss(out.category_logits, out.sentiment_logits, targets, (None, None))
            size = batch.inputs.batch_size
            losses += float(loss) * size
            count += size
            cats.append(out.category_logits.float().softmax(-1).cpu().numpy())
            sents.append(out.sentiment_logits.float().softmax(-1).cpu().numpy())
    return np.concatenate(cats), np.concatenate(sents), losses / max(count, 1)


def evaluate(
    head: FusionHead, examples: Sequence[Example], label_names: Sequence[str], device: str
) -> dict[str, Any]:
    """Loss and per-task metrics (accuracy, macro-F1, per-class precision/recall, confusion matrix)."""
    category, sentiment, loss = predict(head, batches(examples, 64, None), device)
    result: dict[str, Any] = {"loss": loss}
    for task, probs, names in (("category", category, label_names), ("sentiment", sentiment, SENTIMENTS)):
        truth = np.array([getattr(e, task) for e in examples])
        rows = truth != MISSING
        if rows.any():
            result[task] = classification_metrics(truth[rows], probs[rows].argmax(-1), names)
    result["score"] = score(result)
    return result


def score(metrics: dict[str, Any]) -> float:
    """The early-stopping metric: macro-F1 averaged over the tasks that have labels."""
    f1s = [metrics[task]["macro_f1"] for task in ("category", "sentiment") if task in metrics]
    return float(np.mean(f1s)) if f1s else 0.0


def classification_metrics(
    truth: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 (over classes present in truth or predictions), per-class P/R, confusion."""
    n = len(names)
    confusion = np.zeros((n, n), dtype=np.int64)  # rows: truth, columns: predicted
    np.add.at(confusion, (truth, predicted), 1)
    tp = np.diag(confusion).astype(np.float64)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(n), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(n), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=precision + recall > 0)
    # Classes absent from both truth and predictions would add a meaningless 0 to the mean.
    seen = (confusion.sum(0) + confusion.sum(1)) > 0
    return {
        "count": len(truth),
        "accuracy": float(tp.sum() / max(len(truth), 1)),
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "support": int(confusion[i].sum()),
            }
            for i, name in enumerate(names)
        },
        "labels": list(names),
        "confusion": confusion.tolist(),
    }


def fresh_head(config: FusionConfig, seed: int) -> FusionHead:
    """The zero-shot-equivalent head (residuals zero): training can only add to the priors."""
    torch.manual_seed(seed)
    return FusionHead(config)


def train(
    config: FusionConfig,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    label_names: Sequence[str],
    options: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """AdamW + cosine schedule on the masked multi-task loss, early stopping on the validation score."""
    if not train_set:
        raise ValueError("train: no training examples")
    seed_everything(options.seed)
    device = options.device
    head = fresh_head(config, options.seed).to(device)
    weights: tuple[Tensor | None, Tensor | None] = (
        class_weights([e.category for e in train_set], len(label_names)).to(device),
        class_weights([e.sentiment for e in train_set], len(SENTIMENTS)).to(device),
    )
    steps = options.epochs * math.ceil(len(train_set) / options.batch_size)
    optimizer = torch.optim.AdamW(head.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    generator = torch.Generator().manual_seed(options.seed)
    best_score = evaluate(head, val_set, label_names, device)["score"] if val_set else -math.inf
    best_state, best_epoch, history = copy.deepcopy(head.state_dict()), 0, []
    for epoch in range(1, options.epochs + 1):
        train_loss = _epoch(
            head, batches(train_set, options.batch_size, generator), weights, optimizer, schedule, options
        )
        val: dict[str, Any] = (
            evaluate(head, val_set, label_names, device) if val_set else {"loss": 0.0, "score": -train_loss}
        )
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val["loss"],
            "val_score": val["score"],
        }
        record |= {task: _brief(val[task]) for task in ("category", "sentiment") if task in val}
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if val["score"] > best_score + 1e-9:
            best_score, best_epoch, best_state = val["score"], epoch, copy.deepcopy(head.state_dict())
        elif epoch - best_epoch >= options.patience:
            break
    head.load_state_dict(best_state)
    return TrainResult(head.eval(), history, best_epoch, float(best_score))


def _epoch(
    head: FusionHead,
    batched: Sequence[Batch],
    weights: tuple[Tensor | None, Tensor | None],
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    options: TrainConfig,
) -> float:
    head.train()
    total, count = 0.0, 0
    for batch in batched:
        out = head(batch.inputs.to(options.device))
        targets = (batch.targets[0].to(options.device), batch.targets[1].to(options.device))
        loss = masked_loss(out.category_logits, out.sentiment_logits, targets, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), options.grad_clip)
        optimizer.step()
        schedule.step()
        total += float(loss.detach()) * batch.inputs.batch_size
        count += batch.inputs.batch_size
    return total / max(count, 1)


def _brief(metrics: dict[str, Any]) -> dict[str, float]:
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
