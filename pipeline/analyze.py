"""Analyze one video end to end, in-process: fetch, probe, the two paths concurrently, then fuse.

frames path:  sample frames -> vision encoder
audio path:   decode audio -> prosody -> Whisper (transcript + pooled encoder output) -> text encoder,
              text sentiment per transcript segment
Both paths are plain stage calls in two threads (PyAV, CTranslate2 and torch release the GIL in their
heavy parts); the Ray engine runs the same stages as tasks and actors instead. `Analyzer` loads every
model once and is reused for every video; it is not thread-safe (one per worker).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import MediaError
from models.bundled import default_cache_dir
from models.labels import LabelSet, default_taxonomy
from models.predictor import Predictor, load_predictor
from models.text import TextEncoder
from models.text import uses_transformers as text_uses_transformers
from models.types import EncodedVideo, VisionOutput
from models.vision import VisionEncoder
from models.vision import uses_transformers as vision_uses_transformers
from pipeline.config import AnalyzerConfig
from pipeline.fetch import open_source
from pipeline.frames import sample_frames
from pipeline.loading import ModelLoader
from pipeline.media import check_duration, decode_audio_path, run_concurrently, timed
from pipeline.prediction import ModelInfo, Prediction, internal_error, new_id
from pipeline.probe import probe
from pipeline.progress import ProgressFn, ProgressReporter, StopFn
from pipeline.speech import SpeechEncoder, SpeechResult
from pipeline.types import Frames, MediaInfo, Transcript
from pipeline.warmup import write_warmup_clip

log = logging.getLogger(__name__)
VERSION = "0.1.0"
# Fine-tuned heads kept loaded beside the configured one (least recently used evicted). A head is small
# (its weights and the label embeddings it caches); the encoders are shared by all of them.
HEADS_KEPT = 4


@dataclass(frozen=True)
class EncodedMedia:
    """One file after every encoder: what the head (and fine-tuning's feature cache) needs."""

    info: MediaInfo
    transcript: Transcript
    encoded: EncodedVideo
    timings_ms: dict[str, float]


class Analyzer:
    """Owns the loaded models; `analyze(source)` returns a Prediction and never raises for bad input."""

    def __init__(self, config: AnalyzerConfig) -> None:
        self.config = config
        started = time.perf_counter()
        # Vision, Whisper, the text encoders and the sentiment model are independent: they load at once.
        with ModelLoader() as loader:
            vision = loader.submit(
                lambda: VisionEncoder(config.vision_model, config.device, cpu_threads=config.cpu_threads),
                uses_transformers=vision_uses_transformers(config.vision_model),
            )
            # The bridge encoder (shared by every head's predictor) is needed only by a classifier: it waits
            # for the vision model in its thread. Submitted after vision, so a single transformers lane
            # has already run the vision load when this one starts.
            bridge = loader.submit(
                lambda: bridge_encoder(config, vision.result()),
                uses_transformers=text_uses_transformers(config.bridge_model),
            )
            self.speech = SpeechEncoder(config, loader)
            self.vision = vision.result()
            self.bridge = bridge.result()
        self.predictor: Predictor = self._load_predictor(config.head)
        self._other_heads: OrderedDict[str, Predictor] = OrderedDict()
        self.load_ms = (time.perf_counter() - started) * 1000
        log.info("models loaded in %.0f ms", self.load_ms)

    def predictor_for(self, head: str | Path | None) -> Predictor:
        """The predictor of `head` (a fine-tuned head's directory; None: the configured one). Other heads
        load beside the configured one, on the same encoders, and stay loaded up to HEADS_KEPT."""
        if head is None or str(head) == self.config.head:
            return self.predictor
        key = str(head)
        if key in self._other_heads:
            self._other_heads.move_to_end(key)
        else:
            self._other_heads[key] = self._load_predictor(key)
            if len(self._other_heads) > HEADS_KEPT:
                self._other_heads.popitem(last=False)
        return self._other_heads[key]

    def _load_predictor(self, head: str | None) -> Predictor:
        return build_predictor(
            replace(self.config, head=head),
            self.vision,
            self.speech.text,
            self.speech.transcriber.embedding_dim,
            self.bridge,
        )

    def analyze(
        self,
        source: str,
        labels: LabelSet | None = None,
        *,
        head: str | Path | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> Prediction:
        """Fetch and analyze `source` (path or URL) with `head` (None: the configured one), reporting
        stage starts to `progress`; `should_stop` is asked at each stage boundary and between Whisper's
        segments. Failures (a stop included) come back as `status: "error"`."""
        started = time.perf_counter()
        reporter = ProgressReporter(progress, should_stop)
        try:
            predictor = self.predictor_for(head)  # a bad head fails before the download
            reporter.stage("fetch")
            with open_source(source, self.config.media.fetch) as local:
                fetch_ms = (time.perf_counter() - started) * 1000
                media = self.encode_file(local.path, reporter)
                reporter.stage("fuse")
                prediction = self.predict(media, source=source, labels=labels, predictor=predictor)
        except MediaError as exc:
            return Prediction.failed(source, exc, timings_ms={"total": _ms_since(started)})
        except Exception as exc:  # a bug: this source fails, the caller's other sources go on
            log.exception("internal error analysing %s", source)
            return Prediction.failed(source, internal_error(exc), timings_ms={"total": _ms_since(started)})
        timings = {"fetch": fetch_ms, **prediction.timings_ms, "total": _ms_since(started)}
        return replace(prediction, timings_ms=timings)

    def warm_up(self) -> Prediction:
        """Analyse a tiny generated clip once, so the first real analysis pays no first-call costs; then
        run the text models once (the clip has no words). Raises when the analysis fails."""
        with tempfile.TemporaryDirectory(prefix="reelsense-warmup-") as tmp:
            clip = write_warmup_clip(Path(tmp) / "warm-up.mp4")
            prediction = self.analyze(str(clip))
        if prediction.error is not None:
            raise RuntimeError(f"the warm-up analysis failed: {prediction.error.message}")
        self.speech.warm_up()
        return prediction

    def analyze_file(self, path: str | Path, *, source: str, labels: LabelSet | None = None) -> Prediction:
        """Analyze a local file; raises MediaError for unusable input."""
        return self.predict(self.encode_file(path), source=source, labels=labels)

    def encode_file(self, path: str | Path, progress: ProgressReporter | None = None) -> EncodedMedia:
        """Probe, then run the frames path and the audio path concurrently: every encoder, no head."""
        reporter = progress or ProgressReporter()
        started = time.perf_counter()
        reporter.stage("probe")
        info, probe_ms = timed(lambda: probe(path, max_pixels=self.config.media.max_pixels))
        check_duration(info, self.config.media)
        reporter.stage("decode")
        ((frames, vision), frames_timings), audio = run_concurrently(
            lambda: self.encode_frames(path, info), lambda: self.encode_audio(path, info, reporter)
        )
        timings = {"probe": probe_ms, **frames_timings, **audio.timings_ms, "encode": _ms_since(started)}
        return EncodedMedia(
            info, audio.transcript, encoded_video(info, frames.timestamps_s, vision, audio), timings
        )

    def predict(
        self,
        media: EncodedMedia,
        *,
        source: str,
        labels: LabelSet | None = None,
        predictor: Predictor | None = None,
    ) -> Prediction:
        """Priors, fusion head, segments and evidence for encoded media: the Prediction."""
        chosen = predictor or self.predictor
        return make_prediction(chosen, self.config, media, source=source, labels=labels)

    def encode_frames(
        self, path: str | Path, info: MediaInfo
    ) -> tuple[tuple[Frames, VisionOutput], dict[str, float]]:
        """The frames path: sample frames, then the vision encoder."""
        frames, decode_ms = timed(lambda: sample_frames(path, info, self.config.media.frames))
        vision, vision_ms = timed(lambda: self.vision.encode(frames.pixels))
        return (frames, vision), {"frames": decode_ms, "vision": vision_ms}

    def encode_audio(
        self, path: str | Path, info: MediaInfo, progress: ProgressReporter | None = None
    ) -> SpeechResult:
        """The audio path: decode, prosody, then Whisper, the text encoder and text sentiment."""
        reporter = progress or ProgressReporter()
        (audio, features), timings = decode_audio_path(path, info, self.config.media)
        reporter.stage("transcribe")
        speech = self.speech.encode(
            audio, features, on_transcribed=lambda: reporter.stage("text"), should_stop=reporter.stopping
        )
        return replace(speech, timings_ms={**timings, **speech.timings_ms})


def bridge_encoder(config: AnalyzerConfig, vision: VisionEncoder) -> TextEncoder | None:
    """The vision bridge's sentence encoder: only a classifier needs one, and None means the text
    encoder itself (the same spec)."""
    if vision.joint_space or config.bridge_model == config.text_model:
        return None
    return TextEncoder(config.bridge_model, device=vision.device)


def build_predictor(
    config: AnalyzerConfig,
    vision: VisionEncoder,
    text: TextEncoder,
    speech_dim: int,
    bridge: TextEncoder | None = None,
) -> Predictor:
    """The configured head (zero-shot, or `config.head` checked against these encoders). `bridge`: the
    vision bridge's encoder when the caller holds one already (else made here when needed)."""
    cache_dir = config.cache_dir
    bridge = bridge or bridge_encoder(config, vision)
    return load_predictor(
        config.head,
        vision=vision,
        text=text,
        bridge=bridge,
        speech=(config.media.transcribe.model, speech_dim),
        cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
        device=vision.device,
    )


def make_prediction(
    predictor: Predictor,
    config: AnalyzerConfig,
    media: EncodedMedia,
    *,
    source: str,
    labels: LabelSet | None,
) -> Prediction:
    """Run the head on encoded media and assemble the Prediction (shared by both engines)."""
    labels = labels or predictor.default_labels or default_taxonomy()  # a fine-tuned head: its own labels
    parts, fuse_ms = timed(lambda: predictor.predict(media.encoded, labels, config.segment_s))
    timings = {**media.timings_ms, "fuse": fuse_ms, "total": media.timings_ms.get("encode", 0.0) + fuse_ms}
    return Prediction(
        id=new_id(),
        source=source,
        status="ok",
        media=media.info,
        has_speech=media.transcript.has_speech,
        category=parts.category,
        sentiment=parts.sentiment,
        transcript=media.transcript,
        segments=parts.segments,
        evidence=parts.evidence,
        model=ModelInfo(
            version=VERSION,
            vision=config.vision_model,
            text=config.text_model,
            speech=config.media.transcribe.model,
            head=predictor.name,
            labels=labels.source,
        ),
        timings_ms=timings,
    )


def encoded_video(
    info: MediaInfo, frame_times_s: npt.NDArray[np.float64], vision: VisionOutput, audio: SpeechResult
) -> EncodedVideo:
    """The head's input, from the two paths' results."""
    return EncodedVideo(
        duration_s=info.duration_s,
        frame_times_s=frame_times_s,
        vision=vision,
        audio_embedding=audio.audio_embedding,
        prosody=audio.prosody,
        audio_tone=audio.tone,
        text_embeddings=audio.text_embeddings,
        text_spans_s=audio.text_spans_s,
        text_sentiment=audio.text_sentiment,
        text_quality=audio.text_quality,
    )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
