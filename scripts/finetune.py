"""`reelsense features | finetune | eval`: teach the fusion head a user's labels, and prove it got better.

features  encode each manifest video once (Ray or in-process) into the feature cache
finetune  fit a head on cached features: by default the few-shot learner chosen by cross-validation over
          every labelled clip (scripts/finetune_fewshot.py), or (--method attention) the attention head
          from its zero-shot start; write the checkpoint, report.json and PNG plots
eval      accuracy, macro-F1, per-class precision/recall and confusion, fine-tuned vs zero-shot, on the
          same cached features (the zero-shot head is the untrained head, i.e. the priors)
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.feature_cache import FeatureCache
from scripts.finetune_data import (
    LabelledVideo,
    examples,
    executor_factory,
    head_predictor,
    load_features,
    read_manifest,
)
from scripts.finetune_plots import plot_confusions, plot_curves, plot_cv

if TYPE_CHECKING:
    from models.labels import LabelSet
    from models.predictor import Predictor
    from pipeline.config import AnalyzerConfig


@dataclass(frozen=True)
class FeatureOptions:
    cache: Path  # the feature cache folder
    engine: str = "ray"  # "ray" | "inprocess"
    workers: int | None = None  # Ray clip actors (None: one per core)
    progress: bool = True


def default_feature_cache() -> Path:
    from models.bundled import default_cache_dir

    return default_cache_dir() / "features"


def features(manifest: str | Path, config: AnalyzerConfig, options: FeatureOptions) -> list[LabelledVideo]:
    """Rows of `manifest` with their (cached or freshly encoded) features."""
    make = executor_factory(options.engine, options.workers)
    return load_features(read_manifest(manifest), FeatureCache(options.cache), config, make, options.progress)


def manifest_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def training_labels(videos: Sequence[LabelledVideo], given: LabelSet | None) -> LabelSet:
    """`given` (its prompts), else the training manifest's category names, sorted."""
    from models.labels import custom_labels

    if given is not None:
        return given
    return custom_labels(sorted({v.row.category for v in videos if v.row.category is not None}))


def split(
    videos: list[LabelledVideo], fraction: float, seed: int
) -> tuple[list[LabelledVideo], list[LabelledVideo]]:
    """A seeded random (train, validation) split; `fraction` of the videos go to validation."""
    order = np.random.default_rng(seed).permutation(len(videos))
    count = max(1, round(len(videos) * fraction))
    held = set(order[:count].tolist())
    return [v for i, v in enumerate(videos) if i not in held], [v for i, v in enumerate(videos) if i in held]


def finetune(
    train_manifest: str | Path,
    out: str | Path,
    config: AnalyzerConfig,
    feature_options: FeatureOptions,
    train_options: Any,  # models.training.TrainConfig
    *,
    val_manifest: str | Path | None = None,
    val_split: float = 0.2,
    labels: LabelSet | None = None,
    method: str = "fewshot",
) -> dict[str, Any]:
    """Fit a head; write checkpoint, report.json and plots into `out`; return the report.

    method "fewshot" (default): the few-shot learner chosen by cross-validation over every labelled clip
    (`--val`, when given, is only reported); "attention": train the attention head on a split.
    """
    videos = features(train_manifest, config, feature_options)
    if method == "attention":
        return _finetune_attention(
            videos,
            train_manifest,
            out,
            config,
            feature_options,
            train_options,
            val_manifest,
            val_split,
            labels,
        )
    if method != "fewshot":
        raise ValueError(f"finetune: unknown method {method!r} (fewshot or attention)")
    return _finetune_fewshot(
        videos, train_manifest, out, config, feature_options, train_options, val_manifest, labels
    )


def _finetune_fewshot(
    videos: list[LabelledVideo],
    train_manifest: str | Path,
    out: str | Path,
    config: AnalyzerConfig,
    feature_options: FeatureOptions,
    train_options: Any,
    val_manifest: str | Path | None,
    labels: LabelSet | None,
) -> dict[str, Any]:
    from models.fewshot_fit import FitOptions
    from scripts import finetune_fewshot as fs

    label_set = training_labels(videos, labels)
    predictor = head_predictor(config, videos)
    data = fs.fewshot_data(predictor, videos, label_set)
    model, fits = fs.fit(data, label_set, FitOptions(seed=train_options.seed))
    cv = fs.cv_report(fits, label_set.names)
    fs.print_cv(cv)
    report: dict[str, Any] = {
        "train": {
            "manifest": str(train_manifest),
            "sha256": manifest_sha256(train_manifest),
            "videos": len(data.wheres),
        },
        "labels": list(label_set.names),
        "method": "fewshot",
        "seed": train_options.seed,
        "chosen": model.describe(),
        "cross_validation": cv,
    }
    if val_manifest is not None:
        held = fs.fewshot_data(predictor, features(val_manifest, config, feature_options), label_set)
        report["validation"] = {
            "manifest": str(val_manifest),
            "videos": len(held.wheres),
            "zero_shot": fs.metrics(None, held, label_set.names),
            "fine_tuned": fs.metrics(model, held, label_set.names),
        }
    directory = Path(out)
    fs.save(
        directory,
        predictor,
        label_set,
        model,
        _encoder_specs(predictor, config),
        {task: _cv_brief(entry) for task, entry in cv.items()},
        {
            "manifest_sha256": manifest_sha256(train_manifest),
            "label_prompts": [list(p) for p in label_set.prompts],
            "label_source": label_set.source,
            "seed": train_options.seed,
        },
    )
    (directory / "report.json").write_text(json.dumps(report, indent=2))
    plot_cv(cv, directory / "cross_validation.png")
    for task, entry in cv.items():
        panels = [
            ("zero-shot (out of fold)", entry["zero_shot"]["out_of_fold"]),
            ("fine-tuned (out of fold)", entry["fine_tuned"]["out_of_fold"]),
        ]
        plot_confusions(panels, directory / f"confusion_{task}.png")
    return report


def _cv_brief(entry: dict[str, Any]) -> dict[str, Any]:
    """What head.json keeps of a task's cross-validation: both accuracies (mean, spread), the choice."""
    return {
        "chosen": entry["chosen"],
        "folds": entry["folds"],
        "repeats": entry["repeats"],
        **{
            head: {"accuracy_mean": entry[head]["accuracy_mean"], "accuracy_std": entry[head]["accuracy_std"]}
            for head in ("zero_shot", "fine_tuned")
        },
    }


def _finetune_attention(
    videos: list[LabelledVideo],
    train_manifest: str | Path,
    out: str | Path,
    config: AnalyzerConfig,
    feature_options: FeatureOptions,
    train_options: Any,
    val_manifest: str | Path | None,
    val_split: float,
    labels: LabelSet | None,
) -> dict[str, Any]:
    """The attention head trained from its zero-shot init, early-stopped on one validation split."""
    from models.checkpoint import save_head
    from models.training import evaluate, fresh_head, train

    if val_manifest is not None:
        train_videos, val_videos = videos, features(val_manifest, config, feature_options)
    else:
        train_videos, val_videos = split(videos, val_split, train_options.seed)
    label_set = training_labels(train_videos, labels)
    predictor = head_predictor(config, videos)
    train_set = examples(predictor, train_videos, label_set)
    val_set = examples(predictor, val_videos, label_set)
    result = train(predictor.head.config, train_set, val_set, label_set.names, train_options, _print_epoch)
    zero_shot = evaluate(fresh_head(predictor.head.config, 0), val_set, label_set.names, "cpu")
    fine_tuned = evaluate(result.head.cpu(), val_set, label_set.names, "cpu")
    report = {
        "train": {
            "manifest": str(train_manifest),
            "sha256": manifest_sha256(train_manifest),
            "videos": len(train_set),
        },
        "validation": {"manifest": str(val_manifest or f"{val_split:.0%} of train"), "videos": len(val_set)},
        "labels": list(label_set.names),
        "method": "attention",
        "options": asdict(train_options),
        "epochs": result.history,
        "best_epoch": result.best_epoch,
        "zero_shot": zero_shot,
        "fine_tuned": fine_tuned,
    }
    directory = Path(out)
    save_head(
        directory,
        result.head,
        predictor.head.config,
        label_set.names,
        _encoder_specs(predictor, config),
        metrics={
            "best_epoch": result.best_epoch,
            "zero_shot": zero_shot["score"],
            "fine_tuned": fine_tuned["score"],
        },
        extra={
            "manifest_sha256": manifest_sha256(train_manifest),
            "label_prompts": [list(p) for p in label_set.prompts],
            "label_source": label_set.source,
            "seed": train_options.seed,
        },
    )
    _write_outputs(directory, report)
    return report


def _encoder_specs(predictor: Predictor, config: AnalyzerConfig) -> dict[str, str]:
    text = str(predictor.text.spec)
    return {
        "vision": str(predictor.vision.spec),
        "text": text,
        "label": text,
        "audio": config.media.transcribe.model,
    }


def _print_epoch(record: dict[str, Any]) -> None:
    print(
        f"epoch {record['epoch']:3d}  train loss {record['train_loss']:.4f}"
        f"  val loss {record['val_loss']:.4f}"
        f"  val score {record['val_score']:.3f}",
        file=sys.stderr,
        flush=True,
    )


def _write_outputs(directory: Path, report: dict[str, Any]) -> None:
    (directory / "report.json").write_text(json.dumps(report, indent=2))
    plot_curves(report["epochs"], report["best_epoch"], directory / "curves.png")
    for task in ("category", "sentiment"):
        if task in report["fine_tuned"]:
            panels = [("zero-shot", report["zero_shot"][task]), ("fine-tuned", report["fine_tuned"][task])]
            plot_confusions(panels, directory / f"confusion_{task}.png")


def evaluate_manifest(
    manifest: str | Path,
    config: AnalyzerConfig,
    feature_options: FeatureOptions,
    head_dir: str | Path | None,
    labels: LabelSet | None,
) -> dict[str, Any]:
    """Zero-shot and (with `head_dir`) fine-tuned metrics on the same cached features."""
    from models.checkpoint import load_head
    from models.fewshot import load_fewshot
    from models.predictor import head_labels
    from models.training import evaluate, fresh_head
    from scripts import finetune_fewshot as fs

    videos = features(manifest, config, feature_options)
    predictor = head_predictor(config, videos)
    loaded = fewshot = None
    if head_dir is not None:
        expected = {
            "vision": (str(predictor.vision.spec), predictor.head.config.vision_dim),
            "text": (str(predictor.text.spec), predictor.head.config.text_dim),
            "audio": (config.media.transcribe.model, predictor.head.config.audio_dim),
        }
        loaded = load_head(head_dir, expected_encoders=expected)
        fewshot = load_fewshot(head_dir, loaded.extra)
        labels = labels or head_labels(loaded.label_names, loaded.extra)
    label_set = training_labels(videos, labels)
    result: dict[str, Any] = {"manifest": str(manifest), "labels": list(label_set.names)}
    if loaded is None or fewshot is not None:
        if fewshot is not None:
            fewshot.check_labels(label_set.names)  # another label set: refused with a clear message
        data = fs.fewshot_data(predictor, videos, label_set)
        result["videos"] = len(data.wheres)
        result["zero_shot"] = fs.metrics(None, data, label_set.names)
        if fewshot is not None:
            result["fine_tuned"] = fs.metrics(fewshot, data, label_set.names)
        return result
    evaluation = examples(predictor, videos, label_set)
    result["videos"] = len(evaluation)
    for name, head in (("zero_shot", fresh_head(predictor.head.config, 0)), ("fine_tuned", loaded.head)):
        result[name] = evaluate(head, evaluation, label_set.names, "cpu")
    return result


def print_comparison(result: dict[str, Any], out: Path | None) -> None:
    """A side-by-side table (and, with `out`, PNG confusion matrices) for people."""
    heads = [name for name in ("zero_shot", "fine_tuned") if name in result]
    for task in ("category", "sentiment"):
        if task not in result[heads[0]]:
            continue
        print(f"\n{task} ({result[heads[0]][task]['count']} videos)")
        print(f"{'':24s}" + "".join(f"{h:>22s}" for h in heads))
        for metric in ("accuracy", "macro_f1"):
            print(f"{metric:24s}" + "".join(f"{result[h][task][metric]:22.3f}" for h in heads))
        for label in result[heads[0]][task]["labels"]:
            cells = [result[h][task]["per_class"][label] for h in heads]
            print(f"  {label[:22]:22s}" + "".join(_pr(c) for c in cells))
        for h in heads:
            print(f"confusion ({h}; rows true, columns predicted): {result[h][task]['confusion']}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            plot_confusions([(h.replace("_", "-"), result[h][task]) for h in heads], out / f"eval_{task}.png")


def _pr(cell: dict[str, Any]) -> str:
    return f"{'P {:.2f}  R {:.2f}'.format(cell['precision'], cell['recall']):>22s}"
