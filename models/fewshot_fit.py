"""Fitting the few-shot learner: candidates chosen by repeated, stratified k-fold cross-validation.

Every candidate (zero-shot included, so the choice is never worse than the priors by more than the
folds' noise) is scored on the same folds over ALL labelled clips; the best mean accuracy wins, ties
going to the lower log-loss, and a learner must beat zero-shot by more than half a standard error of
the paired per-fold difference to be chosen at all. The winner is then refitted on every clip.
Clips that share a `group` (the same picture in two videos) stay on one side of every fold.
Pure numpy/torch on frozen features: thousands of clips fit in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.fewshot import (
    EPS,
    F32,
    MODALITIES,
    FewShotModel,
    Params,
    Pooled,
    TaskModel,
    _unit,
    active,
    cache_score,
    linear_features,
    mix,
)

MISSING = -1
WEIGHT_SETS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.5, 0.0), (1.0, 1.0, 0.0), (1.0, 1.0, 1.0))
ALPHAS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
BETAS = (1.0, 3.0, 7.0)
PRIOR_WEIGHTS = (1.0, 0.0)  # 0: the priors know nothing of these labels (opaque names)
RIDGES = (1e-3, 1e-2, 1e-1)
LINEAR_WEIGHT_SETS = ((1.0, 1.0, 0.0), (1.0, 1.0, 1.0))
PROBE_RANK = 256  # the probe is fitted in the span of the clips' top directions (exact below 256 clips)
TARGET_FOLDS = 10  # small sets repeat k-fold with new shuffles until about this many folds
LARGE_SET = 400  # clips: above, one k-fold pass (no repeats) and two probe settings
ZERO_SHOT = Params("zero-shot", (0.0, 0.0, 0.0), alpha=0.0)


@dataclass(frozen=True)
class FitOptions:
    seed: int = 0
    max_folds: int = 5  # k of k-fold (less when a class has fewer clips)
    target_folds: int = TARGET_FOLDS
    linear: bool = True  # include the logistic probe among the candidates


@dataclass(frozen=True)
class CandidateScore:
    params: Params
    accuracies: tuple[float, ...]  # per fold
    nll: float  # mean held-out log-loss

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


@dataclass(frozen=True)
class TaskFit:
    """One task's cross-validation and its refitted winner (None: zero-shot was chosen)."""

    model: TaskModel | None
    zero_shot: CandidateScore
    chosen: CandidateScore
    folds: int
    repeats: int
    candidates: int
    oof: dict[str, npt.NDArray[np.int64]]  # first repeat's out-of-fold predictions: zero_shot, chosen
    truth: npt.NDArray[np.int64]
    scores: tuple[CandidateScore, ...] = ()  # every candidate's, in grid order (0: zero-shot)

    def report(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.params.describe(),
            "folds": self.folds,
            "repeats": self.repeats,
            "candidates": self.candidates,
            "clips": len(self.truth),
            "zero_shot": _summary(self.zero_shot),
            "fine_tuned": _summary(self.chosen),
            "gain": self.chosen.mean - self.zero_shot.mean,
        }


def _summary(score: CandidateScore) -> dict[str, Any]:
    return {"accuracy_mean": score.mean, "accuracy_std": score.std, "log_loss": score.nll}


def centres_of(raw: Pooled) -> dict[str, F32]:
    """Per modality, the mean of the present (non-zero) normalised rows."""
    out = {}
    for m, a in raw.arrays.items():
        present = np.linalg.norm(a, axis=1) > EPS
        out[m] = (a[present].mean(axis=0) if present.any() else np.zeros(a.shape[1])).astype(np.float32)
    return out


def fit_fewshot(
    raw: Pooled,
    label_names: Sequence[str],
    priors: tuple[F32, F32],
    targets: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    groups: Sequence[str] | None,
    options: FitOptions,
) -> tuple[FewShotModel, dict[str, TaskFit]]:
    """Cross-validate and fit the category and sentiment learners on N clips' whole-video features.

    raw: N clips' pooled features; priors: (N, L) category and (N, 3) sentiment zero-shot logits;
    targets: (N,) class indices, MISSING where a clip has no label for that task.
    """
    centres = centres_of(raw)
    model = FewShotModel(tuple(label_names), centres, None, None)
    features = model.prepare(raw)
    fits: dict[str, TaskFit] = {}
    for task, prior, target, classes in zip(
        ("category", "sentiment"), priors, targets, (len(label_names), 3), strict=True
    ):
        rows = np.flatnonzero(target != MISSING)
        counts = np.bincount(target[rows], minlength=classes) if len(rows) else np.zeros(classes)
        if (counts >= 2).sum() < 2:
            continue  # nothing to cross-validate: this task stays zero-shot
        group = None if groups is None else [groups[int(i)] for i in rows]
        fits[task] = fit_task(features.rows(rows), prior[rows], target[rows], classes, group, options)
    return (
        FewShotModel(
            tuple(label_names),
            centres,
            fits["category"].model if "category" in fits else None,
            fits["sentiment"].model if "sentiment" in fits else None,
        ),
        fits,
    )


def candidates(linear: bool, clips: int = 0) -> list[Params]:
    """Zero-shot first, then every prototype and cache setting, then the probes (fewer on large sets:
    each costs an L-BFGS fit per fold, and with many clips the weakest penalty is the one that wins)."""
    out = [ZERO_SHOT]
    for w in WEIGHT_SETS:
        for pw in PRIOR_WEIGHTS:
            out += [Params("prototype", w, alpha=a, prior_weight=pw) for a in ALPHAS]
            out += [Params("cache", w, alpha=a, beta=b, prior_weight=pw) for b in BETAS for a in ALPHAS]
    if linear and clips > LARGE_SET:
        out += [Params("linear", LINEAR_WEIGHT_SETS[0], ridge=r) for r in RIDGES[:2]]
    elif linear:
        out += [Params("linear", w, ridge=r) for w in LINEAR_WEIGHT_SETS for r in RIDGES]
    return out


def folds(
    y: npt.NDArray[np.int64], groups: Sequence[str] | None, options: FitOptions
) -> tuple[list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]], int, int]:
    """(train, held) index pairs of repeated stratified (grouped) k-fold; returns them, k and repeats."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    counts = np.bincount(y)
    k = int(max(2, min(options.max_folds, counts[counts > 0].min())))
    if groups is not None:
        k = min(k, len(set(groups)))
    repeats = max(1, math.ceil(options.target_folds / k)) if len(y) <= LARGE_SET else 1
    out = []
    for r in range(repeats):
        seed = options.seed * 1000 + r
        if groups is None:
            splitter: Any = StratifiedKFold(k, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(len(y)), y)
        else:
            splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(len(y)), y, groups)
        out += [(np.asarray(a), np.asarray(b)) for a, b in _quiet(splits)]
    return out, k, repeats


def _quiet(splits: Iterator[Any]) -> list[Any]:
    import warnings

    with warnings.catch_warnings():  # "the least populated class has only n members": expected here
        warnings.simplefilter("ignore", UserWarning)
        return list(splits)


def fit_task(
    features: Pooled,
    prior: F32,
    y: npt.NDArray[np.int64],
    classes: int,
    groups: Sequence[str] | None,
    options: FitOptions,
) -> TaskFit:
    grid = candidates(options.linear, len(y))
    splits, k, repeats = folds(y, groups, options)
    accuracy = np.zeros((len(grid), len(splits)))
    nll = np.zeros((len(grid), len(splits)))
    oof = np.full((len(grid), len(y)), MISSING, dtype=np.int64)
    linear_sets = {p.weights for p in grid if p.method == "linear"}
    bases = {w: probe_basis(linear_features(features, w), options.seed) for w in linear_sets}
    for f, (train, held) in enumerate(splits):
        logits = fold_logits(grid, features, prior, y, classes, train, held, bases)
        for c, z in enumerate(logits):
            accuracy[c, f] = float((z.argmax(1) == y[held]).mean())
            nll[c, f] = _nll(z, y[held])
            if f < k:
                oof[c, held] = z.argmax(1)
    scores = [CandidateScore(p, tuple(accuracy[c]), float(nll[c].mean())) for c, p in enumerate(grid)]
    counts = np.bincount(y)
    by_loss = counts[counts > 0].min() <= 2
    best = select(scores, accuracy, by_loss)
    chosen = grid[best]
    everything = np.arange(len(y))
    model = None if best == 0 else fit_one(chosen, features, prior, y, classes, everything, bases)
    oofs = {"zero_shot": oof[0], "chosen": oof[best]}
    return TaskFit(model, scores[0], scores[best], k, repeats, len(grid), oofs, y, tuple(scores))


def select(scores: Sequence[CandidateScore], accuracy: npt.NDArray[np.float64], by_loss: bool) -> int:
    """The chosen candidate's index, trusting the priors until the folds clearly say otherwise.

    Two steps, each "clearly better" meaning a higher mean accuracy by more than half a standard error of
    the paired per-fold difference: the best learner that keeps the priors (prior_weight > 0) must beat
    zero-shot (index 0), and the best one that drops them (prior_weight 0) must then beat that. Dropping
    the priors on a tie cost 0.1 of held-out accuracy in two of five 4-per-class dev-set draws; opaque
    labels, whose priors are noise, pass the second step easily.

    by_loss: rank within a step by log-loss instead of accuracy (ties: log-loss). With two clips of a
    class, each fold learns from one: accuracy over so few held-out clips ties most candidates, and the
    log-loss, which reads the whole probability, ranks them better (dev set: 0.62 vs 0.48 with opaque
    labels, 2 per class).
    """
    keep = [c for c in range(1, len(scores)) if scores[c].params.prior_weight > 0]
    drop = [c for c in range(1, len(scores)) if scores[c].params.prior_weight == 0]
    chosen = 0
    for pool in (keep, drop):
        if not pool:
            continue
        if by_loss:
            best = min(pool, key=lambda c: (scores[c].nll, c))
        else:
            best = max(pool, key=lambda c: (round(scores[c].mean, 9), -scores[c].nll, -c))
        if _clearly_better(accuracy[best], accuracy[chosen]):
            chosen = best
    return chosen


def _clearly_better(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    diff = a - b
    return bool(diff.mean() > 0 and diff.mean() > 0.5 * diff.std() / math.sqrt(len(diff)))


def fold_logits(
    grid: Sequence[Params],
    features: Pooled,
    prior: F32,
    y: npt.NDArray[np.int64],
    classes: int,
    train: npt.NDArray[np.int64],
    held: npt.NDArray[np.int64],
    bases: dict[tuple[float, float, float], F32],
) -> list[F32]:
    """Held-out logits of every candidate fitted on `train`; shared work (cosines) is done once."""
    query, keys = features.rows(held), features.rows(train)
    values = class_values(y[train], classes)
    protos = {m: prototypes(keys.arrays[m], y[train], classes) for m in MODALITIES}
    proto_sims = {m: query.arrays[m] @ protos[m].T for m in MODALITIES}
    key_sims = {m: query.arrays[m] @ keys.arrays[m].T for m in MODALITIES}
    mixed: dict[tuple[str, tuple[float, ...]], F32] = {}
    scored: dict[tuple[str, tuple[float, ...], float], F32] = {}
    out = []
    for p in grid:
        if p.method == "zero-shot":
            out.append(prior[held])
            continue
        if p.method == "linear":
            tm = fit_one(p, features, prior, y, classes, train, bases)
            out.append(tm.logits(prior[held], query))
            continue
        key = (p.method, p.weights)
        if key not in mixed:
            sims = proto_sims if p.method == "prototype" else key_sims
            mixed[key] = mix({m: sims[m] for m in active(p.weights)}, p.weights)
        if p.method == "prototype":
            score = mixed[key]
        else:  # the affinities do not depend on alpha or the prior weight: computed once per beta
            cached = (p.method, p.weights, p.beta)
            if cached not in scored:
                scored[cached] = cache_score(mixed[key], values, p.beta)
            score = scored[cached]
        out.append((p.prior_weight * prior[held] + p.alpha * score).astype(np.float32))
    return out


def fit_one(
    p: Params,
    features: Pooled,
    prior: F32,
    y: npt.NDArray[np.int64],
    classes: int,
    rows: npt.NDArray[np.int64],
    bases: dict[tuple[float, float, float], F32],
) -> TaskModel:
    """`p` fitted on `rows` (the probe in the basis of its weight set)."""
    train = features.rows(rows)
    if p.method == "prototype":
        arrays = {f"proto_{m}": prototypes(train.arrays[m], y[rows], classes) for m in active(p.weights)}
    elif p.method == "cache":
        arrays = {f"keys_{m}": train.arrays[m] for m in active(p.weights)}
        arrays["values"] = class_values(y[rows], classes)
    else:
        basis = bases[p.weights]  # (D, r): W = basis @ W_r, so the checkpoint needs no basis
        x = linear_features(train, p.weights) @ basis
        arrays = fit_linear(x, prior[rows] * p.prior_weight, y[rows], classes, p.ridge)
        arrays["W"] = (basis @ arrays["W"]).astype(np.float32)
    return TaskModel(p, classes, arrays)


def prototypes(keys: F32, y: npt.NDArray[np.int64], classes: int) -> F32:
    """(classes, D) normalised class means; a class without clips gets a zero row (score 0)."""
    sums = np.zeros((classes, keys.shape[1]), np.float32)
    np.add.at(sums, y, keys)
    return _unit(sums)


def class_values(y: npt.NDArray[np.int64], classes: int) -> F32:
    """(N, classes) one-hot rows divided by the class size: the cache averages within a class."""
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    values = np.zeros((len(y), classes), np.float32)
    values[np.arange(len(y)), y] = 1.0 / counts[y]
    return values


def probe_basis(x: F32, seed: int, rank: int = PROBE_RANK) -> F32:
    """(D, r) orthonormal basis of the rows' span (few rows), or of their top `rank` directions.

    An L2-penalised probe's weights lie in the span of its training rows, so below `rank` clips this
    loses nothing; above, a randomised range finder keeps the directions that carry the variance.
    """
    if x.shape[0] <= rank:
        return _orthonormal(x.T)
    omega = np.random.default_rng(seed).standard_normal((x.shape[1], rank)).astype(np.float32)
    return _orthonormal(x.T @ (x @ omega))  # one power iteration: the top directions dominate


def _orthonormal(y: F32) -> F32:
    """Orthonormal columns spanning y's (D, r) columns, via the small r x r Gram matrix."""
    gram = (y.T @ y).astype(np.float64)
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max() * 1e-10
    return (y @ (vectors[:, keep] / np.sqrt(values[keep]))).astype(np.float32)


def fit_linear(x: F32, offset: F32, y: npt.NDArray[np.int64], classes: int, ridge: float) -> dict[str, F32]:
    """Multinomial logistic regression with the priors as a fixed offset and an L2 penalty (L-BFGS)."""
    from scipy.optimize import minimize

    n, d = x.shape
    x64, off = x.astype(np.float64), offset.astype(np.float64)
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), y] = 1.0

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        w, b = theta[: d * classes].reshape(d, classes), theta[d * classes :]
        z = off + x64 @ w + b
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        g = (np.exp(log_p) - onehot) / n  # d loss / d logits
        value = -(log_p * onehot).sum() / n + ridge * (w * w).sum()
        return float(value), np.concatenate([(x64.T @ g + 2 * ridge * w).ravel(), g.sum(axis=0)])

    theta = minimize(loss, np.zeros(d * classes + classes), jac=True, method="L-BFGS-B",
                     options={"maxiter": 100}).x  # fmt: skip
    w, b = theta[: d * classes].reshape(d, classes), theta[d * classes :]
    return {"W": w.astype(np.float32), "b": b.astype(np.float32)}


def _nll(logits: F32, y: npt.NDArray[np.int64]) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())
