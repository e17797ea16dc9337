"""Benchmark fine-tuning: feature extraction (in-process vs Ray) and training time on cached features.

    python -m scripts.bench_finetune --cache DIR --manifest train.csv [--videos 200 2000] [--no-ray]

Training sets larger than the manifest are SYNTHESISED by jittering the cached EncodedVideos (Gaussian
noise on every embedding): the timing is real, the data is not; the output says so.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.training import Example, TrainConfig, train
from pipeline.analyze import AnalyzerConfig
from pipeline.config import FrameConfig, MediaConfig
from scripts.finetune import FeatureOptions, features, training_labels
from scripts.finetune_data import LabelledVideo, examples, head_predictor


def _jitter(video: LabelledVideo, rng: np.random.Generator) -> LabelledVideo:
    e = video.video.encoded

    def noisy(a: np.ndarray) -> np.ndarray:
        return (a + rng.normal(0, 0.05, a.shape)).astype(np.float32)

    vision = replace(e.vision, embeddings=noisy(e.vision.embeddings))
    encoded = replace(e, vision=vision, text_embeddings=noisy(e.text_embeddings))
    return replace(video, video=replace(video.video, encoded=encoded))


def _extract_s(manifest: str, config: AnalyzerConfig, engine: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        videos = features(manifest, config, FeatureOptions(Path(cache), engine=engine, progress=False))
        return time.perf_counter() - started, len(videos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="labelled manifest of real videos")
    parser.add_argument("--cache", required=True, help="feature cache (filled if needed)")
    parser.add_argument("--videos", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray extraction timing")
    args = parser.parse_args()
    config = AnalyzerConfig(media=MediaConfig(frames=FrameConfig(num_frames=8)), device="cpu")
    results: dict[str, object] = {}
    engines = ["inprocess"] + ([] if args.no_ray else ["ray"])
    for engine in engines:
        seconds, count = _extract_s(args.manifest, config, engine)
        results[f"extract_{engine}"] = {"videos": count, "seconds": round(seconds, 1)}
    base = features(
        args.manifest, config, FeatureOptions(Path(args.cache), engine="inprocess", progress=False)
    )
    labels = training_labels(base, None)
    predictor = head_predictor(config, base)
    rng = np.random.default_rng(0)
    for count in args.videos:
        synthetic = [_jitter(base[i % len(base)], rng) for i in range(count)]
        started = time.perf_counter()
        built: list[Example] = examples(predictor, synthetic, labels)
        inputs_s = time.perf_counter() - started
        split = count // 5
        options = TrainConfig(epochs=args.epochs, patience=args.epochs, batch_size=32)
        started = time.perf_counter()
        result = train(predictor.head.config, built[split:], built[:split], labels.names, options)
        results[f"train_{count}"] = {
            "synthetic": "jittered copies of cached real videos",
            "head_inputs_s": round(inputs_s, 1),
            "train_s": round(time.perf_counter() - started, 1),
            "epochs": len(result.history),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
