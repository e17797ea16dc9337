"""The Ray engine: the analysis as a small DAG of Ray tasks and actors, several videos in flight.

Per video:
    decode task (stateless: fetch, probe, frames and audio decoded concurrently, prosody)
        ├─ frames ref ─► VisionActor.encode   (EfficientNet/CLIP, loaded once per actor)
        └─ audio refs ─► SpeechActor.encode   (Whisper + text encoder + sentiment, once per actor)
    HeadActor.predict(info, vision, speech) ─► Prediction   (priors + fusion head)
Object refs flow from stage to stage, so decoded frames and audio never pass through the driver. Up to
`max_in_flight` videos are submitted at once: the next ones decode while the current ones are in the
models, and memory stays bounded by that number.

The stage code is the in-process code (`pipeline.analyze`, `pipeline.speech`): both engines give the same
Prediction. This is the only module of `pipeline/` and `models/` that imports ray. Its top level imports
only the media stages: a decode worker process never loads torch; the actors import the models they hold.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

from core.errors import MediaError
from models.labels import LabelSet
from pipeline.audio import decode_audio
from pipeline.config import AnalyzerConfig, MediaConfig
from pipeline.executor import WorkItem
from pipeline.fetch import open_source
from pipeline.frames import sample_frames
from pipeline.media import check_duration, run_concurrently, timed
from pipeline.prediction import Prediction, internal_error
from pipeline.probe import probe
from pipeline.types import Audio, Frames, MediaInfo

if TYPE_CHECKING:
    from pipeline.analyze import EncodedMedia
    from pipeline.speech import SpeechResult


log = logging.getLogger(__name__)

# Logical CPU shares. Ray only books them; the OS shares the cores. Speech (Whisper) is the slow stage,
# so it gets most of the book; the rest is small enough that decode tasks always fit beside the actors.
SPEECH_CPUS = 0.5
VISION_CPUS = 0.25
HEAD_CPUS = 0.1
DECODE_CPUS = 0.25
GPU_SHARE = 0.25  # per model actor when the cluster has GPUs: several actors share one card


@dataclass(frozen=True)
class EngineConfig:
    address: str | None = None  # None: RAY_ADDRESS if set, else a local Ray; "auto" or ray://host:10001
    workers: int | None = None  # speech actors (the slow stage); None: the cluster's CPU count
    vision_actors: int = 1  # one EfficientNet actor keeps up with several Whisper actors
    max_in_flight: int | None = None  # videos submitted at once; None: 2 x workers
    retries: int = 2  # a worker or actor that dies mid-video is retried this many times


class RayExecutor:
    """Implements `pipeline.executor.Executor` on Ray. Models load once per actor."""

    def __init__(self, config: AnalyzerConfig, engine: EngineConfig) -> None:
        self.config = config
        self.engine = engine
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            # No dashboard (no extra ports); workers' logs stay in Ray's log files.
            ray.init(address=engine.address, include_dashboard=False, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = GPU_SHARE if ray.cluster_resources().get("GPU", 0) > 0 and config.device != "cpu" else 0
        self.workers = engine.workers or max(1, cpus)
        self.max_in_flight = engine.max_in_flight or 2 * self.workers
        retry = {"max_restarts": engine.retries, "max_task_retries": engine.retries}
        self._speech = [
            SpeechActor.options(num_cpus=SPEECH_CPUS, num_gpus=gpus, **retry).remote(config)  # type: ignore[attr-defined]
            for _ in range(self.workers)
        ]
        self._vision = [
            VisionActor.options(num_cpus=VISION_CPUS, num_gpus=gpus, **retry).remote(config)  # type: ignore[attr-defined]
            for _ in range(engine.vision_actors)
        ]
        speech_dim = ray.get(self._speech[0].embedding_dim.remote())
        self._head = HeadActor.options(num_cpus=HEAD_CPUS, **retry).remote(config, speech_dim)  # type: ignore[attr-defined]
        self._decode = decode_media_task.options(
            num_cpus=DECODE_CPUS, num_returns=3, max_retries=engine.retries
        )
        ray.get(self._head.ready.remote())  # surface a model that cannot load now, not on the first video
        log.info("Ray engine: %d speech actors, %d vision actors, %d videos in flight", self.workers,
                 engine.vision_actors, self.max_in_flight)  # fmt: skip

    def run(
        self, items: Iterable[WorkItem], labels: LabelSet | None = None
    ) -> Iterator[tuple[WorkItem, Prediction]]:
        for item, ref, submitted in self._pipelined(
            items, lambda i, n: self._submit(i, n, "predict", labels)
        ):
            result = self._get(ref, item)
            prediction = Prediction.failed(item.source, result) if isinstance(result, MediaError) else result
            # Wall time from submission to answer (queueing included), as the in-process "total" is.
            total = (time.perf_counter() - submitted) * 1000
            yield item, replace(prediction, timings_ms={**prediction.timings_ms, "total": total})

    def encode(self, items: Iterable[WorkItem]) -> Iterator[tuple[WorkItem, EncodedMedia | MediaError]]:
        """Every encoder, no head: what fine-tuning caches. Failures come back as the MediaError."""
        for item, ref, _ in self._pipelined(items, lambda i, n: self._submit(i, n, "assemble", None)):
            yield item, self._get(ref, item)

    def _pipelined(
        self, items: Iterable[WorkItem], submit: Callable[[WorkItem, int], Any]
    ) -> Iterator[tuple[WorkItem, Any, float]]:
        """Keep `max_in_flight` videos submitted; yield (item, final ref, submit time) as each finishes."""
        pending: dict[Any, tuple[WorkItem, float]] = {}
        queue = iter(items)
        count = 0
        while True:
            while len(pending) < self.max_in_flight:
                item = next(queue, None)
                if item is None:
                    break
                pending[submit(item, count)] = (item, time.perf_counter())
                count += 1
            if not pending:
                return
            done, _ = ray.wait(list(pending), num_returns=1)
            item, submitted = pending.pop(done[0])
            yield item, done[0], submitted

    def _submit(self, item: WorkItem, index: int, method: str, labels: LabelSet | None) -> Any:
        refs: Any = self._decode.remote(item.source, self.config.media)  # num_returns=3: three refs
        info, frames, audio = refs
        vision = self._vision[index % len(self._vision)].encode.remote(frames)
        speech = self._speech[index % len(self._speech)].encode.remote(audio)
        if method == "assemble":
            return self._head.assemble.remote(info, vision, speech)
        return self._head.predict.remote(item.source, info, vision, speech, labels)

    def _get(self, ref: Any, item: WorkItem) -> Any:
        """The stage's result, or the MediaError of a video that could not be analysed."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # A failed stage fails every stage after it with the same error; its cause is ours.
            cause = exc if isinstance(exc, MediaError) else getattr(exc, "cause", None) or exc
            if isinstance(cause, MediaError):
                return cause
            log.error("internal error analysing %s: %s", item.source, exc)
            return internal_error(cause)
        except ray.exceptions.RayError as exc:  # an actor or worker died beyond its retries
            log.error("worker lost analysing %s: %s", item.source, exc)
            return internal_error(exc)

    def close(self) -> None:
        for actor in [*self._speech, *self._vision, self._head]:
            ray.kill(actor)
        if self._started_ray:
            ray.shutdown()


@ray.remote
def decode_media_task(
    source: str, config: MediaConfig
) -> tuple[tuple[MediaInfo, dict[str, float]], Frames, Audio]:
    """Fetch, probe, then decode frames and audio concurrently; the temp file dies with the task."""
    with open_source(source, config.fetch) as local:
        info, probe_ms = timed(lambda: probe(local.path, max_pixels=config.max_pixels))
        check_duration(info, config)
        (frames, frames_ms), (audio, audio_ms) = run_concurrently(
            lambda: timed(lambda: sample_frames(local.path, info, config.frames)),
            lambda: timed(
                lambda: decode_audio(local.path, info, config.audio, max_duration_s=config.max_duration_s)
            ),
        )
    return (info, {"probe": probe_ms, "frames": frames_ms, "audio": audio_ms}), frames, audio


@ray.remote
class VisionActor:
    def __init__(self, config: AnalyzerConfig) -> None:
        from models.vision import VisionEncoder

        self.encoder = VisionEncoder(
            config.vision_model, device=config.device, cpu_threads=config.cpu_threads
        )

    def encode(self, frames: Frames) -> tuple[Any, Any, float]:
        """(frame times, VisionOutput, ms): the pixels stay here, only features go on."""
        vision, ms = timed(lambda: self.encoder.encode(frames.pixels))
        return frames.timestamps_s, vision, ms


@ray.remote
class SpeechActor:
    def __init__(self, config: AnalyzerConfig) -> None:
        from pipeline.speech import SpeechEncoder

        _one_thread()
        self.encoder = SpeechEncoder(config)

    def embedding_dim(self) -> int:
        return self.encoder.transcriber.embedding_dim

    def encode(self, audio: Audio) -> SpeechResult:
        # Prosody here, not in the decode task: the speech actor owns the whole audio path.
        from pipeline.audio_features import audio_features

        features, features_ms = timed(lambda: audio_features(audio))
        speech = self.encoder.encode(audio, features)
        return replace(speech, timings_ms={"audio_features": features_ms, **speech.timings_ms})


@ray.remote
class HeadActor:
    def __init__(self, config: AnalyzerConfig, speech_dim: int) -> None:
        from models.text import TextEncoder
        from models.vision import VisionEncoder
        from pipeline.analyze import build_predictor

        _one_thread()
        self.config = config
        # Its own small encoders: label prompts and class names are embedded here, once per label set.
        vision = VisionEncoder(config.vision_model, device=config.device, cpu_threads=config.cpu_threads)
        text = TextEncoder(config.text_model, device=config.device)
        self.predictor = build_predictor(config, vision, text, speech_dim)

    def ready(self) -> bool:
        return True

    def assemble(
        self, info: tuple[MediaInfo, dict[str, float]], vision: tuple[Any, Any, float], speech: SpeechResult
    ) -> EncodedMedia:
        """The two paths' results as one EncodedMedia (the head's input)."""
        from pipeline.analyze import EncodedMedia, encoded_video

        media_info, decode_timings = info
        frame_times, vision_output, vision_ms = vision
        timings = {**decode_timings, "vision": vision_ms, **speech.timings_ms}
        timings["encode"] = sum(timings.values())  # work done for this video across the workers
        encoded = encoded_video(media_info, frame_times, vision_output, speech)
        return EncodedMedia(media_info, speech.transcript, encoded, timings)

    def predict(
        self,
        source: str,
        info: tuple[MediaInfo, dict[str, float]],
        vision: tuple[Any, Any, float],
        speech: SpeechResult,
        labels: LabelSet | None,
    ) -> Prediction:
        from pipeline.analyze import make_prediction

        media = self.assemble(info, vision, speech)
        return make_prediction(self.predictor, self.config, media, source=source, labels=labels)


def _one_thread() -> None:
    """One intra-op thread per worker process: parallelism comes from the processes (measured faster)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
