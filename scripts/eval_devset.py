"""Measure reelsense on the dev set of real media, side by side with the naive baseline on the same clips.

    .venv/bin/python -m scripts.eval_devset --devset devset --split test --cache .eval-cache --out report.json

The dev set (`scripts/make_devset.py`) is `category.csv` and `sentiment.csv` (columns path, category,
sentiment, split, kind, language, twin, voice, text, source; paths relative to the csv) and `labels.json`.
Category is scored on category.csv's clips, sentiment on sentiment.csv's, WER on every clip with a text.
reelsense runs as `Analyzer.analyze` does (the zero-shot head unless --head): `encode_file`, then the
predictor; the naive baseline is `scripts/naive_baseline.py`. A clip that fails counts as wrong.

With --cache DIR the expensive part is kept: reelsense's encoder outputs per clip (models/feature_cache.py,
keyed by content and encoder set-up) and the naive baseline's answers (JSON, keyed by content and labels).
A second run then only re-runs the predictor. To tune in Python, encode once and score in a loop:

    items, labels = encode_devset(Path("devset"), "test", AnalyzerConfig(device="cpu"), Path(".eval-cache"))
    predictor = reelsense_predictor(AnalyzerConfig(device="cpu"), items)
    for t in (0.02, 0.03, 0.05):
        models.predictor.TEXT_TEMPERATURE = t      # the predictor reads its constants at call time
        print(t, score_reelsense(items, labels, predictor)["category"]["fused"])
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import MediaError
from models.feature_cache import CachedVideo, FeatureCache, cache_key, file_sha256
from models.labels import LabelSet, labels_from_file
from pipeline.config import AnalyzerConfig
from scripts.eval_metrics import Answer, DevClip, system_metrics
from scripts.eval_report import format_report
from scripts.finetune_data import fingerprint

if TYPE_CHECKING:
    from models.predictor import PredictionParts
    from scripts.naive_baseline import NaiveBaseline

MANIFESTS = ("category", "sentiment")
NAIVE_CACHE_VERSION = 1  # bump when the naive baseline changes its answers: old entries are ignored
TOP_SCORES = 3  # fused category scores kept per clip in --out
DEFAULT_SEGMENT_S = AnalyzerConfig().segment_s


class PartsPredictor(Protocol):
    """What `score_reelsense` needs of a predictor: models.predictor.Predictor fits."""

    def predict(self, encoded: Any, labels: LabelSet, segment_s: float) -> PredictionParts: ...


@dataclass(frozen=True)
class EncodedClip:
    """One clip after reelsense's encoders (None with the reason when it failed)."""

    clip: DevClip
    video: CachedVideo | None
    error: str | None = None


# -- the dev set --------------------------------------------------------------------------------------


def read_devset(devset: Path, split: str | None) -> list[DevClip]:
    """The clips of `split` (None: all) from category.csv and sentiment.csv, one per path, in order."""
    merged: dict[str, DevClip] = {}
    for name in MANIFESTS:
        manifest = devset / f"{name}.csv"
        if not manifest.is_file():
            continue
        with manifest.open(newline="", encoding="utf-8-sig") as file:
            for row in csv.DictReader(file):
                clip = _clip(manifest, name, {k: (v or "").strip() for k, v in row.items() if k})
                if split is not None and clip.split != split:
                    continue
                old = merged.get(clip.path)
                merged[clip.path] = clip if old is None else _merge(old, clip)
    if not merged:
        raise SystemExit(f"no clips of split {split!r} in {devset}/{{category,sentiment}}.csv")
    return list(merged.values())


def _clip(manifest: Path, name: str, row: dict[str, str]) -> DevClip:
    return DevClip(
        path=str((manifest.parent / row["path"]).resolve()),
        rel=row["path"],
        category=row.get("category") or None,
        sentiment=(row.get("sentiment") or "").lower() or None,
        split=row.get("split", ""),
        kind=row.get("kind", ""),
        language=row.get("language", ""),
        twin=row.get("twin", ""),
        voice=row.get("voice", ""),
        text=row.get("text", ""),
        source=row.get("source", ""),
        in_category=name == "category",
        in_sentiment=name == "sentiment",
    )


def _merge(old: DevClip, new: DevClip) -> DevClip:
    """A clip in both manifests: category from category.csv, sentiment from sentiment.csv."""
    category = old.category if old.in_category else new.category
    sentiment = new.sentiment if new.in_sentiment else old.sentiment
    return replace(
        old,
        category=category,
        sentiment=sentiment,
        in_category=old.in_category or new.in_category,
        in_sentiment=old.in_sentiment or new.in_sentiment,
    )


def limited(clips: Sequence[DevClip], limit: int | None) -> list[DevClip]:
    """`limit` clips evenly spread over the list (manifests are often sorted by label)."""
    if limit is None or limit >= len(clips):
        return list(clips)
    return [clips[i * len(clips) // limit] for i in range(limit)]


# -- reelsense -----------------------------------------------------------------------------------------


def encode_devset(
    devset: Path, split: str, config: AnalyzerConfig, cache: Path | None, limit: int | None = None
) -> tuple[list[EncodedClip], LabelSet]:
    """The split's clips through reelsense's encoders (cached under cache/reelsense), and the labels."""
    return encode_reelsense(limited(read_devset(devset, split), limit), config, cache), labels_from_file(
        devset / "labels.json"
    )


def encode_reelsense(
    clips: Sequence[DevClip], config: AnalyzerConfig, cache: Path | None
) -> list[EncodedClip]:
    """Every clip's encoder outputs; an Analyzer is loaded only when some clip is not cached."""
    from tqdm import tqdm

    store = FeatureCache(cache / "reelsense") if cache else None
    setup = fingerprint(config)
    analyzer = None
    out = []
    for clip in tqdm(clips, desc="reelsense", file=sys.stderr):
        key = cache_key(file_sha256(clip.path), setup) if store else ""
        video = store.get(key) if store else None
        if video is None:
            if analyzer is None:
                from pipeline.analyze import Analyzer

                analyzer = Analyzer(replace(config, head=None))
            try:
                media = analyzer.encode_file(clip.path)
            except MediaError as exc:
                out.append(EncodedClip(clip, None, f"{exc.code.value}: {exc.message}"))
                continue
            video = CachedVideo(media.encoded, media.transcript.text)
            if store:
                store.put(key, video)
        out.append(EncodedClip(clip, video))
    return out


def reelsense_predictor(config: AnalyzerConfig, items: Sequence[EncodedClip]) -> Any:
    """The configured head (zero-shot unless config.head) on reelsense's vision and text encoders."""
    from models.text import TextEncoder
    from models.vision import VisionEncoder
    from pipeline.analyze import build_predictor
    from pipeline.transcribe import Transcriber

    dims = [
        i.video.encoded.audio_embedding.shape[0]
        for i in items
        if i.video and i.video.encoded.audio_embedding is not None
    ]
    speech_dim = (
        dims[0]
        if dims
        else Transcriber(config.media.transcribe, embed=True, cache_dir=config.cache_dir).embedding_dim
    )
    vision = VisionEncoder(config.vision_model, device=config.device, cpu_threads=config.cpu_threads)
    text = TextEncoder(config.text_model, device=config.device)
    return build_predictor(config, vision, text, speech_dim)


def reelsense_answers(
    items: Sequence[EncodedClip],
    labels: LabelSet,
    predictor: PartsPredictor,
    segment_s: float = DEFAULT_SEGMENT_S,
) -> list[Answer]:
    """What reelsense says about each encoded clip (the Prediction's category, sentiment, evidence)."""
    answers = []
    for item in items:
        if item.video is None:
            answers.append(Answer(error=item.error))
            continue
        parts = predictor.predict(item.video.encoded, labels, segment_s)
        by_modality = parts.evidence["category_by_modality"]
        answers.append(
            Answer(
                category=parts.category.label,
                vision=_top(by_modality["vision"]),
                text=_top(by_modality["text"]),
                sentiment=parts.sentiment.label,
                transcript=item.video.transcript,
                top={
                    k: round(v, 4)
                    for k, v in sorted(parts.category.scores.items(), key=lambda kv: -kv[1])[:TOP_SCORES]
                },
            )
        )
    return answers


def _top(ranked: list[dict[str, Any]] | None) -> str | None:
    return None if not ranked else str(ranked[0]["label"])


def score_reelsense(
    items: Sequence[EncodedClip],
    labels: LabelSet,
    predictor: PartsPredictor,
    segment_s: float = DEFAULT_SEGMENT_S,
) -> dict[str, Any]:
    """reelsense's metrics on encoded clips: only the predictor runs (milliseconds a clip), for tuning."""
    answers = reelsense_answers(items, labels, predictor, segment_s)
    return system_metrics([i.clip for i in items], answers, labels.names)


# -- the naive baseline ------------------------------------------------------------------------------


def naive_answers(
    clips: Sequence[DevClip], labels: LabelSet, cache: Path | None, make: Callable[[], NaiveBaseline]
) -> list[Answer]:
    """The naive baseline's answer per clip, from cache/naive/<key>.json when there."""
    import av
    from tqdm import tqdm

    baseline = None
    out = []
    for clip in tqdm(clips, desc="naive", file=sys.stderr):
        blob = json.dumps([NAIVE_CACHE_VERSION, file_sha256(clip.path), list(labels.names)])
        path = cache / "naive" / f"{hashlib.sha256(blob.encode()).hexdigest()}.json" if cache else None
        if path is not None and path.is_file():
            out.append(Answer(**json.loads(path.read_text(encoding="utf-8"))))
            continue
        baseline = baseline or make()
        try:
            r = baseline.analyze(clip.path, labels.names)
            answer = Answer(r.category, r.vision_label, r.text_label, r.sentiment, r.transcript)
        except (av.FFmpegError, OSError, ValueError) as exc:
            answer = Answer(error=f"{type(exc).__name__}: {exc}")
        if path is not None and answer.error is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(answer), ensure_ascii=False), encoding="utf-8")
            tmp.replace(path)
        out.append(answer)
    return out


# -- the command ---------------------------------------------------------------------------------------


def evaluate(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Run both systems on the split; (the printed report, the --out document)."""
    from models.bundled import default_cache_dir
    from scripts.naive_baseline import NaiveBaseline

    cache_dir = args.cache_dir or default_cache_dir()
    config = AnalyzerConfig(device="cpu", head=args.head, cache_dir=str(cache_dir))
    clips = limited(read_devset(args.devset, args.split), args.limit)
    labels = labels_from_file(args.devset / "labels.json")
    unknown = sorted({c.category for c in clips if c.in_category and c.category} - set(labels.names))
    if unknown:  # such clips can only be wrong, and have no row in the confusion matrix
        print(f"eval_devset: categories not in labels.json: {', '.join(unknown)}", file=sys.stderr)
    items = encode_reelsense(clips, config, args.cache)
    ours = reelsense_answers(items, labels, reelsense_predictor(config, items), config.segment_s)
    naive = naive_answers(clips, labels, args.cache, lambda: NaiveBaseline(cache_dir))
    systems = {
        "reelsense": system_metrics(clips, ours, labels.names),
        "naive": system_metrics(clips, naive, labels.names),
    }
    header = f"reelsense vs naive baseline on {args.devset} split {args.split}" + (
        f" (limit {args.limit})" if args.limit else ""
    )
    document = {
        "devset": str(args.devset),
        "split": args.split,
        "labels": list(labels.names),
        "head": args.head or "zero-shot",
        "metrics": systems,
        "clips": [
            {**asdict(c), "reelsense": asdict(a), "naive": asdict(b)}
            for c, a, b in zip(clips, ours, naive, strict=True)
        ],
    }
    return format_report(systems, header), document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devset", type=Path, default=Path("devset"), help="folder with the manifests")
    parser.add_argument("--split", default="test", help="tune or test (default test)")
    parser.add_argument("--cache", type=Path, help="keep encoder outputs and naive answers here")
    parser.add_argument("--out", type=Path, help="write metrics and per-clip answers (JSON) here")
    parser.add_argument("--limit", type=int, help="only this many clips, evenly spread over the split")
    parser.add_argument(
        "--cache-dir", type=Path, help="where bundled weights are unpacked (default: user cache)"
    )
    parser.add_argument("--head", help="a fine-tuned head's directory (default: the zero-shot head)")
    args = parser.parse_args(argv)
    report, document = evaluate(args)
    print(report)
    if args.out:
        args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
