"""`reelsense features | finetune | eval`: the fine-tuning commands' flags and thin handlers.

Split from `scripts/cli.py` (which registers them) to keep each module small; the work is in
`scripts/finetune.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scripts.cli import (
    _add_analyzer_flags,
    _add_fetch_flags,
    _add_media_flags,
    _analyzer_config,
    _guarded,
    _labels,
    add_clips_at_once_flag,
)

HEADS = ("zero_shot", "fine_tuned")


def add_finetune_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    features = sub.add_parser(
        "features", help="encode a labelled manifest's videos once into the feature cache"
    )
    features.add_argument("--manifest", required=True, help="CSV/JSONL: path or url, category, sentiment")
    finetune = sub.add_parser("finetune", help="train the fusion head on your labels (cached features)")
    finetune.add_argument("--train", required=True, help="labelled manifest (CSV/JSONL) to train on")
    finetune.add_argument(
        "--method",
        choices=["fewshot", "attention"],
        default="fewshot",
        help="fewshot (default): a learner on pooled embeddings + priors chosen by cross-validation over "
        "all clips; attention: train the attention head (for large label sets)",
    )
    val = finetune.add_mutually_exclusive_group()
    val.add_argument("--val", default=None, help="labelled manifest to report on (attention: to validate on)")
    val.add_argument("--val-split", type=float, default=0.2, help="attention: else this fraction of --train")
    finetune.add_argument("--out", required=True, type=Path, help="the head's directory (checkpoint, report)")
    finetune.add_argument("--epochs", type=int, default=30, help="at most this many epochs (early stopping)")
    finetune.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (cosine decay)")
    finetune.add_argument("--batch-size", type=int, default=32, help="videos per step")
    finetune.add_argument(
        "--patience", type=int, default=8, help="epochs without improvement before stopping"
    )
    finetune.add_argument("--seed", type=int, default=0, help="same seed, same head")
    evaluate = sub.add_parser("eval", help="fine-tuned vs zero-shot head on a labelled manifest")
    evaluate.add_argument("--manifest", required=True, help="labelled manifest (CSV/JSONL) to evaluate on")
    evaluate.add_argument("--plots", type=Path, default=None, help="write confusion-matrix PNGs here")
    evaluate.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    for parser, run in (
        (features, _features_command),
        (finetune, _finetune_command),
        (evaluate, _eval_command),
    ):
        parser.add_argument(
            "--cache", type=Path, default=None, help="feature cache (default: CACHE/features)"
        )
        parser.add_argument(
            "--engine", choices=["ray", "inprocess"], default="ray", help="feature extraction"
        )
        parser.add_argument(
            "--workers", type=int, default=None, help="Ray clip actors (default: one per 2 cores)"
        )
        add_clips_at_once_flag(parser)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        _add_fetch_flags(parser)
        _add_media_flags(parser)
        _add_analyzer_flags(parser)
        parser.set_defaults(run=run)


def _feature_options(args: argparse.Namespace) -> Any:
    from scripts.finetune import FeatureOptions, default_feature_cache

    cache = args.cache or default_feature_cache()
    return FeatureOptions(cache, engine=args.engine, workers=args.workers, progress=not args.no_progress)


def _features_command(args: argparse.Namespace) -> int:
    from scripts.finetune import features

    videos = _guarded(lambda: features(args.manifest, _analyzer_config(args), _feature_options(args)))
    if videos is None:
        return 2
    print(
        json.dumps(
            {"manifest": args.manifest, "videos": len(videos), "cache": str(_feature_options(args).cache)}
        )
    )
    return 0


def _finetune_command(args: argparse.Namespace) -> int:
    from models.training import TrainConfig
    from scripts.finetune import finetune

    if args.head:
        print(
            "reelsense: finetune starts from the zero-shot head; --head is for eval/analyze", file=sys.stderr
        )
        return 2
    device = _guarded(lambda: _training_device(args.device))  # "cuda" without a GPU: a message, not a trace
    if device is None:
        return 2
    options = TrainConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, patience=args.patience, seed=args.seed,
        device=device,
    )  # fmt: skip
    report = _guarded(
        lambda: finetune(
            args.train,
            args.out,
            _analyzer_config(args),
            _feature_options(args),
            options,
            val_manifest=args.val,
            val_split=args.val_split,
            labels=_labels(args),
            method=args.method,
        )
    )
    if report is None:
        return 2
    if report["method"] == "fewshot":
        summary = {
            task: {
                "chosen": entry["chosen"],
                **{h: {k: round(entry[h][k], 4) for k in ("accuracy_mean", "accuracy_std")} for h in HEADS},
            }
            for task, entry in report["cross_validation"].items()
        }
        print(json.dumps({"out": str(args.out), "method": "fewshot", "cross_validation": summary}))
        return 0
    scores = {name: round(report[name]["score"], 4) for name in HEADS}
    print(json.dumps({"out": str(args.out), "best_epoch": report["best_epoch"], "validation_score": scores}))
    return 0


def _eval_command(args: argparse.Namespace) -> int:
    from scripts.finetune import evaluate_manifest, print_comparison

    result = _guarded(
        lambda: evaluate_manifest(
            args.manifest, _analyzer_config(args), _feature_options(args), args.head, _labels(args)
        )
    )
    if result is None:
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_comparison(result, args.plots)
    return 0


def _training_device(requested: str) -> str:
    from models.devices import resolve_device

    return str(resolve_device(requested))
