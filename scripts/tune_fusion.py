"""Fit the zero-shot fusion's few constants on the TUNING half of the dev set; write fusion_constants.json.

    .venv/bin/python -m scripts.tune_fusion --devset devset --cache devset/features
        [--out models/data/fusion_constants.json] [--text-model package:...]

What is fitted (`models.zero_shot.FusionConstants`): the two temperatures, the expert floor, how much of
each label's pull on anything is taken off (calibration), the two reliability functions (Whisper's
confidence -> trust in the transcript; the classifier's confidence -> trust in the frames), and the
sentiment prior's neutral bias. Objective: the mean negative log-likelihood of the true category under the
fused prior (a smooth stand-in for accuracy), plus a small L2 pull of the reliability coefficients
towards zero, minimised with Powell's method from the untuned defaults; the neutral bias maximises
3-class accuracy on the tuning half's sentiment clips (ties: the smallest change). Only rows with
`split == tune` are read; the test half is never touched here. Features come from the feature cache
(`models/feature_cache.py`) and are computed (in-process) only for clips not cached yet.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.labels import LabelSet, labels_from_file
from models.types import SENTIMENTS
from models.zero_shot import (
    FusionConstants,
    Reliability,
    floored,
    log_softmax,
    text_reliability_features,
    text_sentiment_prior,
    vision_reliability_features,
)
from pipeline.config import AnalyzerConfig

F64 = npt.NDArray[np.float64]
OUT = Path(__file__).resolve().parent.parent / "models" / "data" / "fusion_constants.json"
L2 = 0.01  # pull of the reliability coefficients towards 0 (features are standardised)


@dataclass(frozen=True)
class ClipScores:
    """What the fusion reads of one clip, before any constant is applied."""

    label: int
    frame_sims: F64 | None  # (L,) mean raw frame-label cosine; None without frames
    text_sims: F64 | None  # (L,) raw transcript-label cosine; None without speech
    vision_features: tuple[float, ...]
    text_features: tuple[float, ...]


def read_split(manifest: Path, split: str) -> list[dict[str, str]]:
    with manifest.open(newline="", encoding="utf-8") as file:
        return [row for row in csv.DictReader(file) if row.get("split") == split]


def load_videos(
    rows: Sequence[dict[str, str]], manifest: Path, cache_dir: Path, config: AnalyzerConfig
) -> list[Any]:
    from models.feature_cache import FeatureCache
    from scripts.finetune_data import LabelledRow, executor_factory, load_features

    labelled = [
        LabelledRow(
            f"{manifest}:{i}",
            str((manifest.parent / row["path"]).resolve()),
            row.get("category") or None,
            row.get("sentiment") or None,
        )
        for i, row in enumerate(rows)
    ]
    return load_features(labelled, FeatureCache(cache_dir), config, executor_factory("inprocess", None))


def clip_scores(
    predictor: Any, videos: Sequence[Any], labels: LabelSet
) -> tuple[list[ClipScores], tuple[F64, F64]]:
    """Raw per-clip similarities and reliability features, and the (L,) label biases of vision (each
    label's mean score over the classifier's classes) and of text (its mean cosine to the class texts)."""
    raw = replace(predictor.constants, vision_calibration=0.0, text_calibration=0.0)
    predictor.constants = raw
    out = []
    for item in videos:
        encoded = item.video.encoded
        frames, texts = predictor.similarities(encoded, labels)
        probs = encoded.vision.class_probs
        quality = encoded.text_quality
        text_features: tuple[float, ...] = ()
        if quality is not None and len(quality):
            text_features = text_reliability_features(
                float(quality[0, 0]), float(quality[0, 1]), int(quality[0, 2])
            )
        out.append(
            ClipScores(
                label=labels.names.index(item.row.category),
                frame_sims=frames.mean(axis=0).astype(np.float64) if len(frames) else None,
                text_sims=texts[0].astype(np.float64) if len(texts) else None,
                vision_features=vision_reliability_features(probs)
                if probs is not None and len(probs)
                else (),
                text_features=text_features,
            )
        )
    vision_bias = predictor.class_label_scores(labels).mean(axis=0).astype(np.float64)
    return out, (vision_bias, predictor.label_biases(labels).astype(np.float64))


def _standardise(values: list[tuple[float, ...]]) -> tuple[F64, F64]:
    present = np.asarray([v for v in values if v], dtype=np.float64)
    if not len(present):
        return np.zeros(1), np.ones(1)
    return present.mean(axis=0), np.maximum(present.std(axis=0), 1e-6)


class Objective:
    """Mean NLL of the true label under the fused prior, for a parameter vector."""

    def __init__(self, clips: Sequence[ClipScores], biases: tuple[F64, F64]) -> None:
        self.clips = clips
        self.vision_bias, self.text_bias = biases
        self.v_mean, self.v_std = _standardise([c.vision_features for c in clips])
        self.t_mean, self.t_std = _standardise([c.text_features for c in clips])

    def constants(self, theta: F64) -> FusionConstants:
        """theta: log T_v, log T_t, logit floor, cal_v, cal_t, v bias, 2 v coef, t bias, 3 t coef (all on
        standardised features; folded back into raw-feature coefficients here)."""
        nv, nt = len(self.v_mean), len(self.t_mean)
        v_coef = theta[6 : 6 + nv] / self.v_std
        t_coef = theta[7 + nv : 7 + nv + nt] / self.t_std
        return FusionConstants(
            vision_temperature=float(np.exp(theta[0])),
            text_temperature=float(np.exp(theta[1])),
            expert_floor=float(1 / (1 + np.exp(-theta[2]))),
            vision_calibration=float(theta[3]),
            text_calibration=float(theta[4]),
            vision_reliability=Reliability(float(theta[5] - v_coef @ self.v_mean), tuple(map(float, v_coef))),
            text_reliability=Reliability(
                float(theta[6 + nv] - t_coef @ self.t_mean), tuple(map(float, t_coef))
            ),
        )

    def initial(self) -> F64:
        d = FusionConstants()
        nv, nt = len(self.v_mean), len(self.t_mean)
        head = [
            np.log(d.vision_temperature),
            np.log(d.text_temperature),
            np.log(d.expert_floor / (1 - d.expert_floor)),
            0.0,
            0.0,
            3.0,
        ]
        return np.asarray(head + [0.0] * nv + [3.0] + [0.0] * nt, dtype=np.float64)

    def bounds(self) -> list[tuple[float, float]]:
        nv, nt = len(self.v_mean), len(self.t_mean)
        temperature = (float(np.log(0.01)), float(np.log(0.3)))
        floor = (float(np.log(0.02 / 0.98)), float(np.log(0.5 / 0.5)))
        calibration = (0.0, 1.5)
        bias, coef = (-4.0, 8.0), (-3.0, 3.0)
        return [
            temperature,
            temperature,
            floor,
            calibration,
            calibration,
            bias,
            *[coef] * nv,
            bias,
            *[coef] * nt,
        ]

    def fused(self, c: FusionConstants, clip: ClipScores) -> tuple[F64, F64 | None, F64 | None]:
        size = len(self.text_bias)
        total = np.zeros(size)
        vision = text = None
        if clip.frame_sims is not None:
            vision = log_softmax(
                (clip.frame_sims - c.vision_calibration * self.vision_bias).astype(np.float32),
                c.vision_temperature,
            ).astype(np.float64)
            w = c.vision_reliability.weight(clip.vision_features) if clip.vision_features else 1.0
            total += w * floored(vision.astype(np.float32), c.expert_floor)
        if clip.text_sims is not None:
            text = log_softmax(
                (clip.text_sims - c.text_calibration * self.text_bias).astype(np.float32), c.text_temperature
            ).astype(np.float64)
            w = c.text_reliability.weight(clip.text_features) if clip.text_features else 1.0
            total += w * floored(text.astype(np.float32), c.expert_floor)
        return log_softmax(total.astype(np.float32), 1.0).astype(np.float64), vision, text

    def __call__(self, theta: F64) -> float:
        c = self.constants(theta)
        nll = -np.mean([self.fused(c, clip)[0][clip.label] for clip in self.clips])
        coefs = np.concatenate([theta[6 : 6 + len(self.v_mean)], theta[7 + len(self.v_mean) :]])
        return float(nll + L2 * float(coefs @ coefs))

    def accuracy(self, c: FusionConstants) -> dict[str, float]:
        hits = {"fused": [], "vision": [], "text": []}  # type: dict[str, list[bool]]
        for clip in self.clips:
            fused, vision, text = self.fused(c, clip)
            hits["fused"].append(int(fused.argmax()) == clip.label)
            if vision is not None:
                hits["vision"].append(int(vision.argmax()) == clip.label)
            if text is not None:
                hits["text"].append(int(text.argmax()) == clip.label)
        return {k: round(float(np.mean(v)), 4) if v else float("nan") for k, v in hits.items()}


def fit_category(
    clips: Sequence[ClipScores], biases: tuple[F64, F64]
) -> tuple[FusionConstants, dict[str, Any]]:
    from scipy.optimize import minimize

    objective = Objective(clips, biases)
    start = objective.initial()
    # Bounds keep every constant meaningful (a negative calibration or a zero floor would only fit noise).
    result = minimize(
        objective,
        start,
        method="Powell",
        bounds=objective.bounds(),
        options={"maxiter": 4000, "xtol": 1e-3, "ftol": 1e-5},
    )
    fitted = objective.constants(result.x)
    record = {
        "before": {"nll": round(objective(start), 4), **objective.accuracy(objective.constants(start))},
        "after": {"nll": round(float(result.fun), 4), **objective.accuracy(fitted)},
    }
    return fitted, record


def fit_neutral_bias(videos: Sequence[Any]) -> tuple[float, dict[str, Any]]:
    """The neutral bias that maximises 3-class accuracy on the tuning half's sentiment clips."""
    rows = []
    for item in videos:
        sentiments = item.video.encoded.text_sentiment
        if item.row.sentiment is not None and sentiments and sentiments[0] is not None:
            rows.append((sentiments[0], SENTIMENTS.index(item.row.sentiment)))
    grid = np.round(np.arange(-6.0, 2.01, 0.25), 2)

    def accuracy(b: float) -> float:
        return float(np.mean([SENTIMENTS.index(text_sentiment_prior(s, b).label) == y for s, y in rows]))

    scores = {float(b): accuracy(float(b)) for b in grid}
    best = max(scores.values()) if scores else 0.0
    chosen = min((b for b, a in scores.items() if a == best), key=abs) if scores else 0.0
    return chosen, {
        "clips": len(rows),
        "accuracy_at_0": round(scores.get(0.0, 0.0), 4),
        "accuracy": round(best, 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devset", type=Path, default=Path("devset"))
    parser.add_argument(
        "--cache", type=Path, default=None, help="feature cache dir (default DEVSET/features)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--text-model", default=AnalyzerConfig().text_model)
    args = parser.parse_args(argv)

    from scripts.finetune_data import head_predictor

    config = AnalyzerConfig(device="cpu", text_model=args.text_model)
    labels = labels_from_file(args.devset / "labels.json")
    cache = args.cache or args.devset / "features"
    category_csv, sentiment_csv = args.devset / "category.csv", args.devset / "sentiment.csv"
    videos = load_videos(read_split(category_csv, "tune"), category_csv, cache, config)
    sentiment_videos = load_videos(read_split(sentiment_csv, "tune"), sentiment_csv, cache, config)
    predictor = head_predictor(config, videos)
    clips, biases = clip_scores(predictor, [v for v in videos if v.row.category in labels.names], labels)
    constants, record = fit_category(clips, biases)
    neutral_bias, sentiment_record = fit_neutral_bias(sentiment_videos)
    digest = hashlib.sha256(category_csv.read_bytes() + sentiment_csv.read_bytes()).hexdigest()
    constants = replace(
        constants,
        sentiment_neutral_bias=neutral_bias,
        provenance={
            "fitted_by": "scripts/tune_fusion.py",
            "on": f"dev set tuning half (split == tune): {len(clips)} category clips, "
            f"{sentiment_record['clips']} sentiment clips; docs/DEVSET.md",
            "manifests_sha256": digest,
            "text_model": args.text_model,
            "bridge_model": config.bridge_model,
            # The defaults the features were encoded with (docs/DEVSET.md says why each).
            "num_frames": config.media.frames.num_frames,
            "expand_nouns": config.expand_nouns,
            "date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
            "category_tuning_half": record,
            "sentiment_tuning_half": sentiment_record,
        },
    )
    args.out.write_text(json.dumps(constants.to_json(), indent=1) + "\n")
    print(json.dumps(constants.to_json(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
