"""Few-shot fine-tuning on the dev set: k labelled clips per class from the tune half, scored on test.

    .venv/bin/python -m scripts.bench_fewshot --devset devset --cache .eval-cache [--shots 2 4 8 16]

For each k and each of --draws seeded draws, k clips per class are drawn from the tune half (distinct
pictures first: a `twin` group is one picture in several videos), `finetune`'s learner is fitted on them
exactly as `reelsense finetune` does (cross-validation grouped by twin), and zero-shot and the fitted head
are scored on every test clip whose picture is not in the tune half. The same again with the labels
replaced by opaque names ("A", "B", ...), which the zero-shot priors know nothing about. Features come
from the cache only (`scripts/eval_devset.py` fills it): uncached clips are skipped, never encoded here.
--speed N also times fitting N clips (the cached clips repeated with small noise) end to end.
"""

from __future__ import annotations

import argparse
import string
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from models.feature_cache import FeatureCache, cache_key, file_sha256
from models.fewshot_fit import FitOptions
from models.labels import LabelSet, custom_labels, labels_from_file
from pipeline.config import AnalyzerConfig
from scripts import finetune_fewshot as fs
from scripts.eval_devset import EncodedClip, read_devset, reelsense_predictor
from scripts.finetune_data import LabelledRow, LabelledVideo, fingerprint


def cached_clips(devset: Path, split: str, cache: Path, config: AnalyzerConfig) -> list[EncodedClip]:
    """The split's category clips whose features are cached (never encodes)."""
    store, setup = FeatureCache(cache / "reelsense"), fingerprint(config)
    out, missing = [], 0
    for clip in read_devset(devset, split):
        if not clip.in_category or clip.category is None:
            continue
        video = store.get(cache_key(file_sha256(clip.path), setup))
        if video is None:
            missing += 1
        else:
            out.append(EncodedClip(clip, video))
    print(f"{split}: {len(out)} cached category clips ({missing} not cached, skipped)", file=sys.stderr)
    return out


def as_videos(items: list[EncodedClip], rename: dict[str, str]) -> list[LabelledVideo]:
    return [
        LabelledVideo(
            LabelledRow(i.clip.rel, i.clip.path, rename[i.clip.category or ""], None, i.clip.twin or None),
            i.video,
        )
        for i in items
        if i.video is not None
    ]


def draw(videos: list[LabelledVideo], shots: int, rng: np.random.Generator) -> list[int]:
    """`shots` indices per class: one clip of each of a class's pictures (twin groups) before a second."""
    by_class: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, v in enumerate(videos):
        by_class[v.row.category or ""][v.row.group or str(i)].append(i)
    chosen = []
    for cls in sorted(by_class):
        groups = [rng.permutation(g).tolist() for g in by_class[cls].values()]
        order = rng.permutation(len(groups)).tolist()
        picked: list[int] = []
        rank = 0
        while len(picked) < shots and any(rank < len(g) for g in groups):
            picked += [groups[o][rank] for o in order if rank < len(groups[o])][: shots - len(picked)]
            rank += 1
        chosen += picked
    return chosen


def subset(data: fs.FewShotData, rows: list[int]) -> fs.FewShotData:
    idx = np.asarray(rows)
    return fs.FewShotData(
        data.pooled.rows(idx),
        data.category_prior[idx],
        data.sentiment_prior[idx],
        data.category[idx],
        data.sentiment[idx],
        None if data.groups is None else [data.groups[i] for i in rows],
        [data.wheres[i] for i in rows],
    )


def run_labels(
    predictor: Any,
    tune: list[EncodedClip],
    test: list[EncodedClip],
    labels: LabelSet,
    rename: dict[str, str],
    shots: list[int],
    draws: int,
    seed: int,
) -> dict[int, dict[str, list[Any]]]:
    """Per k: zero-shot and fine-tuned test accuracy, fit seconds and chosen method of each draw."""
    tune_data = fs.fewshot_data(predictor, as_videos(tune, rename), labels)
    test_data = fs.fewshot_data(predictor, as_videos(test, rename), labels)
    zero = fs.metrics(None, test_data, labels.names)["category"]["accuracy"]
    results: dict[int, dict[str, list[Any]]] = {}
    for k in shots:
        rows: dict[str, list[Any]] = {"zero_shot": [], "fine_tuned": [], "seconds": [], "chosen": []}
        for d in range(draws):
            rng = np.random.default_rng([seed, k, d])
            picked = subset(tune_data, draw(as_videos(tune, rename), k, rng))
            start = time.perf_counter()
            model, fits = fs.fit(picked, labels, FitOptions(seed=seed + d))
            rows["seconds"].append(time.perf_counter() - start)
            rows["zero_shot"].append(zero)
            rows["fine_tuned"].append(fs.metrics(model, test_data, labels.names)["category"]["accuracy"])
            rows["chosen"].append(
                fits["category"].chosen.params.method if "category" in fits else "zero-shot"
            )
        results[k] = rows
    return results


def print_table(title: str, results: dict[int, dict[str, list[Any]]]) -> None:
    print(f"\n{title}")
    head = f"{'shots':>5s} {'zero-shot':>15s} {'fine-tuned':>15s} {'gain':>15s} {'min gain':>9s}"
    print(f"{head} {'fit s':>6s}  chosen (draws)")
    for k, rows in results.items():
        zs, ft = np.array(rows["zero_shot"]), np.array(rows["fine_tuned"])
        gain = ft - zs
        methods = ",".join(f"{m}x{rows['chosen'].count(m)}" for m in sorted(set(rows["chosen"])))
        print(
            f"{k:5d} {zs.mean():8.3f} ± {zs.std():.3f} {ft.mean():8.3f} ± {ft.std():.3f} "
            f"{gain.mean():+8.3f} ± {gain.std():.3f} {gain.min():+9.3f} "
            f"{np.mean(rows['seconds']):6.2f}  {methods}"
        )


def speed(predictor: Any, items: list[EncodedClip], labels: LabelSet, count: int, seed: int) -> None:
    """Time `finetune`'s work on `count` clips from the cache: head inputs, cross-validation, refit."""
    rng = np.random.default_rng(seed)
    videos = []
    for i in range(count):
        base = items[i % len(items)]
        assert base.video is not None
        enc = base.video.encoded
        jitter = rng.normal(0, 0.01, enc.vision.embeddings.shape).astype(np.float32)
        noisy = replace(enc, vision=replace(enc.vision, embeddings=enc.vision.embeddings + jitter))
        video = replace(base.video, encoded=noisy)
        videos.append(
            LabelledVideo(LabelledRow(str(i), f"{base.clip.path}#{i}", base.clip.category, None), video)
        )
    start = time.perf_counter()
    data = fs.fewshot_data(predictor, videos, labels)
    prepared = time.perf_counter()
    _, fits = fs.fit(data, labels, FitOptions(seed=seed))
    done = time.perf_counter()
    entry = fits["category"].report()
    print(
        f"\nspeed: {count} cached clips: head inputs {prepared - start:.1f} s, cross-validation "
        f"({entry['folds']}-fold x {entry['repeats']}, {entry['candidates']} candidates) + refit "
        f"{done - prepared:.1f} s, total {done - start:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devset", type=Path, default=Path("devset"))
    parser.add_argument("--cache", type=Path, default=Path(".eval-cache"), help="holds reelsense/ features")
    parser.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--draws", type=int, default=5, help="seeded draws per number of shots")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=int, default=0, help="also time fitting this many clips")
    args = parser.parse_args(argv)
    config = AnalyzerConfig(device="cpu")
    tune, test = (cached_clips(args.devset, s, args.cache, config) for s in ("tune", "test"))
    tune_pictures = {i.clip.twin for i in tune if i.clip.twin}
    leaking = [i for i in test if i.clip.twin and i.clip.twin in tune_pictures]
    test = [i for i in test if i not in leaking]
    print(
        f"test: {len(test)} clips scored ({len(leaking)} dropped: their picture is in tune)", file=sys.stderr
    )
    predictor = reelsense_predictor(config, tune + test)
    names = labels_from_file(args.devset / "labels.json")
    same = {n: n for n in names.names}
    opaque = {n: string.ascii_uppercase[i] for i, n in enumerate(names.names)}
    opaque_labels = custom_labels([opaque[n] for n in names.names])
    for title, labels, rename in (
        ("dev set labels (category accuracy on the test half)", names, same),
        ("opaque labels A, B, ... (the priors know nothing)", opaque_labels, opaque),
    ):
        print_table(
            title, run_labels(predictor, tune, test, labels, rename, args.shots, args.draws, args.seed)
        )
    if args.speed:
        speed(predictor, tune + test, names, args.speed, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
