"""Fine-tuning's data side: labelled manifests, the feature cache filled by an engine, head inputs.

A labelled manifest is CSV or JSONL with `path` (or `url`) and `category` and/or `sentiment`; either label
may be empty on a row. An optional `group` (or `twin`) column names clips that show the same thing (one
picture in two videos): cross-validation keeps a group on one side of every fold. Rows that cannot be
used (missing file, unknown sentiment, undecodable video) are reported on stderr and skipped: one bad row
never costs the others.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import MediaError
from models.feature_cache import CachedVideo, FeatureCache, cache_key, file_sha256
from models.training import MISSING, Example
from models.types import SENTIMENTS
from pipeline.executor import WorkItem
from scripts.batch_inputs import _URL, MANIFEST_COLUMNS

if TYPE_CHECKING:
    from models.labels import LabelSet
    from models.predictor import Predictor
    from pipeline.config import AnalyzerConfig
    from pipeline.executor import Executor


@dataclass(frozen=True)
class LabelledRow:
    where: str  # "<manifest>:<line>", for reports
    source: str  # absolute path or URL
    category: str | None
    sentiment: str | None
    group: str | None = None  # clips of one group (the same picture) stay on one side of every fold


@dataclass(frozen=True)
class LabelledVideo:
    row: LabelledRow
    video: CachedVideo


def report(where: str, why: str) -> None:
    print(f"reelsense: skipped {where}: {why}", file=sys.stderr)


def read_manifest(manifest: str | Path) -> list[LabelledRow]:
    """The usable rows of a labelled manifest; bad ones are reported and skipped."""
    path = Path(manifest)
    rows: list[LabelledRow] = []
    for line, raw in _raw_rows(path):
        where = f"{path}:{line}"
        values = {k.strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
        source = next(
            (values[c] for c in MANIFEST_COLUMNS if isinstance(values.get(c), str) and values[c]), None
        )
        category = values.get("category") or None
        sentiment = (values.get("sentiment") or "").lower() or None
        if source is None:
            report(where, "no path or url")
        elif sentiment is not None and sentiment not in SENTIMENTS:
            report(where, f"sentiment {sentiment!r} is not one of {', '.join(SENTIMENTS)}")
        elif category is None and sentiment is None:
            report(where, "neither a category nor a sentiment")
        else:
            resolved = (
                source if _URL.match(source) else str((path.parent / Path(source).expanduser()).resolve())
            )
            group = values.get("group") or values.get("twin") or None
            rows.append(
                LabelledRow(
                    where,
                    resolved,
                    None if category is None else str(category),
                    sentiment,
                    None if group is None else str(group),
                )
            )
    return rows


def _raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as file:  # utf-8-sig: spreadsheets add a BOM
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(file)
            for row in reader:
                if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    yield reader.line_num, row
            return
        for line, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                yield line, parsed
            else:
                report(f"{path}:{line}", "not a JSON object")


def fingerprint(config: AnalyzerConfig) -> dict[str, Any]:
    """What changes an EncodedVideo besides the video: the encoders and how frames are sampled."""
    # Every transcription option changes the words (and so the text features); where the weights are
    # cached and which device runs them do not (neither is in the key). Whisper's thread count sat in its
    # own config when the caches were first written and stays in the key, so that they stay valid
    # (tests/test_config.py pins it).
    transcribe = asdict(config.media.transcribe)
    transcribe["cpu_threads"] = config.cpu_threads
    transcribe["backend"] = "faster-whisper"  # the only backend left; it was a config field then too
    return {
        "vision": config.vision_model,
        "text": config.text_model,
        "expand_nouns": config.expand_nouns,
        "speech": transcribe,
        # The decode budget only bounds hostile files' cost; it changes no ordinary video's frames.
        "frames": {k: v for k, v in asdict(config.media.frames).items() if k != "decode_budget_pixels"},
        "sentiment_weights": _sentiment_weights_digest(),  # cached text sentiment is theirs
    }


def _sentiment_weights_digest() -> str:
    from importlib import resources

    from models.sentiment_heads import WEIGHTS_RESOURCE

    data = resources.files("models").joinpath(WEIGHTS_RESOURCE).read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def content_key(row: LabelledRow) -> str:
    # URLs are keyed by the URL itself: hashing them would mean downloading every one on every run.
    return file_sha256(row.source) if not _URL.match(row.source) else "url:" + row.source


def load_features(
    rows: Sequence[LabelledRow],
    cache: FeatureCache,
    config: AnalyzerConfig,
    make_executor: Callable[[AnalyzerConfig], Executor],
    progress: bool = True,
) -> list[LabelledVideo]:
    """Each row's cached features, encoding (on the given engine) only the videos not cached yet."""
    from tqdm import tqdm

    setup = fingerprint(config)
    keys: dict[str, str] = {}
    for row in rows:
        try:
            keys.setdefault(row.source, cache_key(content_key(row), setup))
        except OSError as exc:
            report(row.where, f"cannot read {row.source}: {exc.strerror}")
    found = {source: cache.get(key) for source, key in keys.items()}
    missing = [WorkItem(source, keys[source]) for source, video in found.items() if video is None]
    if missing:
        executor = make_executor(replace(config, head=None))  # encoders only: no head needed
        try:
            results = executor.encode(missing)
            for item, media in tqdm(results, total=len(missing), desc="features", disable=not progress):
                if isinstance(media, MediaError):
                    found.pop(item.source)
                    report(item.source, f"{media.message} ({media.code.value})")
                    continue
                fresh = CachedVideo(media.encoded, media.transcript.text)
                found[item.source] = fresh
                cache.put(item.key, fresh)
        finally:
            executor.close()
    return [LabelledVideo(row, video) for row in rows if (video := found.get(row.source)) is not None]


def executor_factory(engine: str, workers: int | None) -> Callable[[AnalyzerConfig], Executor]:
    def make(config: AnalyzerConfig) -> Executor:
        if engine == "ray":
            from pipeline.ray_engine import EngineConfig, RayExecutor

            return RayExecutor(config, EngineConfig(workers=workers))
        from pipeline.executor import InProcessExecutor

        return InProcessExecutor(config)

    return make


def head_predictor(config: AnalyzerConfig, videos: Sequence[LabelledVideo]) -> Predictor:
    """The zero-shot predictor (its encoders embed labels and class names) for computing head inputs."""
    from models.text import TextEncoder
    from models.vision import VisionEncoder
    from pipeline.analyze import build_predictor

    dims = [
        v.video.encoded.audio_embedding.shape[0]
        for v in videos
        if v.video.encoded.audio_embedding is not None
    ]
    if dims:
        speech_dim = dims[0]
    else:  # no video had audio: ask Whisper (known without loading for the bundled model)
        from pipeline.transcribe import Transcriber

        transcriber = Transcriber(
            config.media.transcribe,
            device=config.device,
            cpu_threads=config.cpu_threads,
            cache_dir=config.cache_dir,
        )
        speech_dim = transcriber.embedding_dim
    vision = VisionEncoder(config.vision_model, device=config.device, cpu_threads=config.cpu_threads)
    text = TextEncoder(config.text_model, device=config.device)
    return build_predictor(replace(config, head=None), vision, text, speech_dim)


def examples(predictor: Predictor, videos: Sequence[LabelledVideo], labels: LabelSet) -> list[Example]:
    """One training example per video; a category outside `labels` is reported and dropped."""
    out = []
    for item in videos:
        category = item.row.category
        if category is not None and category not in labels.names:
            report(item.row.where, f"category {category!r} is not in the label set")
            continue
        out.append(
            Example(
                predictor.head_inputs(item.video.encoded, labels),
                MISSING if category is None else labels.names.index(category),
                MISSING if item.row.sentiment is None else SENTIMENTS.index(item.row.sentiment),
            )
        )
    return out
