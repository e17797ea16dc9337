"""The naive baseline: the obvious script on the same offline models, to measure reelsense against.

Written on its own on purpose (no Analyzer, no priors, no fusion head): only the model loaders are shared.

    frames:     8 frames sampled uniformly (PyAV) -> EfficientNet-Lite0 ImageNet probabilities, averaged
                -> the top classes' names embedded by MiniLM, probability-weighted mean
                -> cosine to each label name's MiniLM embedding -> softmax
    transcript: faster-whisper base, its default transcribe() options (int8 CPU, beam 5, language
                detection, temperature fallback, no VAD) -> MiniLM -> cosine to the labels -> softmax
    category:   argmax of the equal-weight product of the two (either alone when the other is missing)
    sentiment:  VADER compound on the transcript (>= 0.05 positive, <= -0.05 negative, else neutral;
                no speech: neutral)

    .venv/bin/python -m scripts.naive_baseline clip.mp4 other.mkv --labels "cats,dogs,cooking"
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from models.bundled import default_cache_dir, whisper_model_dir
from models.text import TextEncoder
from models.vision import VisionEncoder

NUM_FRAMES = 8
TOP_CLASSES = 5  # ImageNet classes (of the frames' mean probabilities) whose names vote
VADER_THRESHOLD = 0.05  # VADER's documented compound cut-offs


@dataclass(frozen=True)
class NaiveResult:
    category: str  # argmax of the product of the two softmaxes (the label set's first on no evidence)
    vision_label: str | None  # frames alone; None without a video stream
    text_label: str | None  # transcript alone; None when nothing was transcribed
    sentiment: str  # negative | neutral | positive
    transcript: str
    language: str | None  # what faster-whisper detected; None without audio
    timings_ms: dict[str, float]


class NaiveBaseline:
    """Loads EfficientNet-Lite0, MiniLM and Whisper base once; `analyze` any number of files."""

    def __init__(self, cache_dir: Path | None = None, cpu_threads: int = 1) -> None:
        from faster_whisper import WhisperModel
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.vision = VisionEncoder(device="cpu", cpu_threads=cpu_threads)
        self.text = TextEncoder("package:minilm-l6-v2", device="cpu")  # the obvious English encoder
        model_dir = whisper_model_dir("whisper-base", cache_dir or default_cache_dir())
        self.whisper = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads
        )
        self.vader = SentimentIntensityAnalyzer()
        self.class_embeddings = self.text.encode(list(self.vision.class_names))  # (1000, 384)
        self._labels: dict[tuple[str, ...], npt.NDArray[np.float32]] = {}

    def analyze(self, path: str | Path, label_names: Sequence[str]) -> NaiveResult:
        """One file -> NaiveResult. Raises av.FFmpegError (or OSError) for unreadable files."""
        names = tuple(label_names)
        if len(names) < 2:
            raise ValueError("need at least two labels")
        labels = self._label_embeddings(names)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        frames = sample_frames(path, NUM_FRAMES)
        timings["frames"] = _ms_since(started)
        vision = None if frames is None else self._vision_probs(frames, labels)
        timings["vision"] = _ms_since(started) - timings["frames"]
        mark = time.perf_counter()
        transcript, language = self._transcribe(path)
        timings["transcribe"] = _ms_since(mark)
        text = None
        if transcript:
            text = softmax(self.text.encode([transcript])[0] @ labels.T)
        fused = _product([p for p in (vision, text) if p is not None], len(names))
        compound = self.vader.polarity_scores(transcript)["compound"] if transcript else 0.0
        timings["total"] = _ms_since(started)
        return NaiveResult(
            category=names[int(fused.argmax())],
            vision_label=None if vision is None else names[int(vision.argmax())],
            text_label=None if text is None else names[int(text.argmax())],
            sentiment=vader_label(compound),
            transcript=transcript,
            language=language,
            timings_ms={k: round(v, 1) for k, v in timings.items()},
        )

    def _label_embeddings(self, names: tuple[str, ...]) -> npt.NDArray[np.float32]:
        if names not in self._labels:
            self._labels[names] = self.text.encode(list(names))  # the bare names, L2-normalised
        return self._labels[names]

    def _vision_probs(
        self, frames: npt.NDArray[np.uint8], labels: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        probs = self.vision.encode(frames).class_probs
        assert probs is not None, "EfficientNet-Lite0 gives class probabilities"
        mean = probs.mean(axis=0)
        top = np.argsort(mean)[::-1][:TOP_CLASSES]
        vector = (mean[top, None] * self.class_embeddings[top]).sum(axis=0) / mean[top].sum()
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        return softmax(vector @ labels.T)

    def _transcribe(self, path: str | Path) -> tuple[str, str | None]:
        if not _has_stream(path, "audio"):
            return "", None
        segments, info = self.whisper.transcribe(str(path))  # every option at its default
        return " ".join(s.text.strip() for s in segments).strip(), info.language


def sample_frames(path: str | Path, count: int) -> npt.NDArray[np.uint8] | None:
    """`count` RGB frames at uniformly spaced times (one pass of decoding), (count, H, W, 3); None
    without a video stream. The frame shown at each time is the last one starting at or before it."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        duration = _duration_s(container, stream)
        targets = [(i + 0.5) * duration / count for i in range(count)]
        picked: list[npt.NDArray[np.uint8]] = []
        previous: Any = None
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            while len(picked) < len(targets) and t > targets[len(picked)] and previous is not None:
                picked.append(previous.to_ndarray(format="rgb24"))
            if len(picked) == len(targets):
                break
            previous = frame
        while previous is not None and len(picked) < len(targets):  # targets past the last frame
            picked.append(previous.to_ndarray(format="rgb24"))
    return np.stack(picked) if picked else None


def _duration_s(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / av.time_base


def _has_stream(path: str | Path, kind: str) -> bool:
    with av.open(str(path)) as container:
        return bool(getattr(container.streams, kind))


def softmax(scores: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    x = np.asarray(scores, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def _product(dists: Sequence[npt.NDArray[np.float64]], size: int) -> npt.NDArray[np.float64]:
    """Equal-weight product of the distributions; uniform when there are none."""
    if not dists:
        return np.full(size, 1.0 / size)
    product = np.prod(np.stack(dists), axis=0)
    return product / product.sum()


def vader_label(compound: float) -> str:
    if compound >= VADER_THRESHOLD:
        return "positive"
    return "negative" if compound <= -VADER_THRESHOLD else "neutral"


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", type=Path, help="local media files")
    parser.add_argument("--labels", required=True, help="comma-separated label names")
    parser.add_argument(
        "--cache-dir", type=Path, help="where bundled Whisper is joined (default: user cache)"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.labels.split(",") if n.strip()]
    baseline = NaiveBaseline(cache_dir=args.cache_dir)
    failed = 0
    for path in args.files:
        try:
            row: dict[str, Any] = {"source": str(path), **asdict(baseline.analyze(path, names))}
        except (av.FFmpegError, OSError) as exc:
            failed += 1
            row = {"source": str(path), "error": str(exc)}
        print(json.dumps(row, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
