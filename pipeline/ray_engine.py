"""The Ray engine: a few fat "clip" actors, each running the whole in-process analysis of its clips.

    driver ──clip──► ClipActor 1 ... ClipActor N   (each: one Analyzer, every model loaded once,
             ◄──Prediction / EncodedMedia / MediaError──   `clips_per_actor` clips at once in threads)

N is sized from the cluster: one actor per `CLIPS_PER_CPU_ACTOR` CPUs Ray reports (or `workers`), each
analysing that many clips at once; with GPUs, `ACTORS_PER_GPU` actors share each card, one clip each. An
actor is one process that holds vision, Whisper, the text encoders, the sentiment model and the head once,
and runs `Analyzer.analyze` (decode → vision + speech → head) on whole clips: nothing is loaded twice in a
process, and no decoded frames or audio cross a process boundary. Two clips in one process share every
model's weights (Whisper keeps a decoder per clip), where a second process would load them all again:
measured on 2 cores, one actor with two clips at once is as fast as two actors and holds ~1.2 GB less.
An earlier layout (a decode task, then vision, speech and head actors) loaded the text encoders in several
processes and was slower than a sequential script on two cores: it was replaced, not kept beside this one.

The driver keeps at most `max_in_flight` clips submitted and gives each new clip to the actor with the
fewest in flight, so a free actor gets the next clip and each has the next one queued. A clip that fails
fails alone; an actor that dies is restarted by Ray and its calls retried (`retries`).

This is the only module of `pipeline/` and `models/` that imports ray. Its top level imports no model: the
driver never loads torch; each actor imports the Analyzer in its own process.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

from core.errors import MediaError
from models.labels import LabelSet
from pipeline.config import AnalyzerConfig
from pipeline.executor import WorkItem
from pipeline.prediction import Prediction, internal_error

if TYPE_CHECKING:
    from pipeline.analyze import EncodedMedia


log = logging.getLogger(__name__)

# On GPU nodes two actors share each card: one decodes on the CPU while the other runs its models.
ACTORS_PER_GPU = 2
# On CPUs an actor analyses two clips at once in threads, on two CPUs' worth of booking: each clip's
# Python-bound stretches (decode, tokenising, fusion) overlap the other's model passes.
CLIPS_PER_CPU_ACTOR = 2


@dataclass(frozen=True)
class EngineConfig:
    address: str | None = None  # None: RAY_ADDRESS if set, else a local Ray; "auto" or ray://host:10001
    workers: int | None = None  # clip actors; None: one per 2 of the cluster's CPUs (with GPUs: 2 per GPU)
    max_in_flight: int | None = None  # clips submitted at once; None: each actor's clips + 1 queued, summed
    retries: int = 2  # an actor that dies mid-clip is restarted and its calls retried this many times


@dataclass(frozen=True)
class ActorLayout:
    """How many clip actors, the logical resources each books, and how many clips each runs at once."""

    actors: int
    num_cpus: float
    num_gpus: float
    clips_per_actor: int = 1


def plan_layout(resources: dict[str, float], config: AnalyzerConfig, workers: int | None) -> ActorLayout:
    """The actor layout for a cluster with `resources` (Ray's `cluster_resources()`). Every actor fits at
    once: more actors than CPUs book a fraction each instead of waiting forever for a CPU."""
    cpus = max(1.0, resources.get("CPU", 1.0))
    gpus = resources.get("GPU", 0.0) if config.device != "cpu" else 0.0
    clips = 1 if gpus >= 1 else CLIPS_PER_CPU_ACTOR
    default = int(gpus) * ACTORS_PER_GPU if gpus >= 1 else math.ceil(cpus / clips)
    actors = max(1, workers or default)
    num_cpus = min(float(clips), cpus / actors)
    # Ray takes a GPU fraction below 1 or a whole number: share the cards, never more than one per actor.
    num_gpus = min(1.0, gpus / actors) if gpus > 0 else 0.0
    if 0 < num_gpus < 1:
        num_gpus = math.floor(num_gpus * 1000) / 1000  # a fraction Ray can pack `actors` of
    return ActorLayout(actors, num_cpus, num_gpus, clips)


class RayExecutor:
    """Implements `pipeline.executor.Executor` on Ray. Models load once per actor."""

    def __init__(self, config: AnalyzerConfig, engine: EngineConfig) -> None:
        self.config = config
        self.engine = engine
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            # No dashboard (no extra ports); workers' logs stay in Ray's log files.
            ray.init(address=engine.address, include_dashboard=False, log_to_driver=False)
        self.layout = plan_layout(ray.cluster_resources(), config, engine.workers)
        self.workers = self.layout.actors
        clips = self.layout.clips_per_actor
        # Each actor's clips, and the next one queued at it so it never waits for the driver.
        self.max_in_flight = engine.max_in_flight or (clips + 1) * self.workers
        options = {
            "num_cpus": self.layout.num_cpus,
            "num_gpus": self.layout.num_gpus,
            "max_concurrency": clips,  # a threaded actor: its clips share the loaded models
            "max_restarts": engine.retries,
            "max_task_retries": engine.retries,
        }
        actor_config = replace(config, concurrent_clips=clips)
        # Every actor is created before any is waited for: their model loads run at the same time.
        self._actors = [ClipActor.options(**options).remote(actor_config) for _ in range(self.workers)]  # type: ignore[attr-defined]
        try:
            ray.get([actor.ready.remote() for actor in self._actors])  # a model that cannot load: now
        except Exception:
            self.close()
            raise
        layout = self.layout
        log.info("Ray engine: %d clip actors (%.2f CPU, %.2f GPU, %d clips at once each), %d in flight",
                 layout.actors, layout.num_cpus, layout.num_gpus, clips, self.max_in_flight)  # fmt: skip

    def run(
        self, items: Iterable[WorkItem], labels: LabelSet | None = None
    ) -> Iterator[tuple[WorkItem, Prediction]]:
        for item, result, submitted in self._dispatch(items, lambda a, i: a.analyze.remote(i.source, labels)):
            prediction = Prediction.failed(item.source, result) if isinstance(result, MediaError) else result
            # Wall time from submission to answer (queueing included), as before.
            total = (time.perf_counter() - submitted) * 1000
            yield item, replace(prediction, timings_ms={**prediction.timings_ms, "total": total})

    def encode(self, items: Iterable[WorkItem]) -> Iterator[tuple[WorkItem, EncodedMedia | MediaError]]:
        """Every encoder, no head: what fine-tuning caches. Failures come back as the MediaError."""
        for item, result, _ in self._dispatch(items, lambda a, i: a.encode.remote(i.source)):
            yield item, result

    def _dispatch(
        self, items: Iterable[WorkItem], call: Callable[[Any, WorkItem], Any]
    ) -> Iterator[tuple[WorkItem, Any, float]]:
        """Keep `max_in_flight` clips submitted, each to the actor with the fewest in flight; yield
        (item, result or MediaError, submit time) as each finishes."""
        pending: dict[Any, tuple[WorkItem, int, float]] = {}
        busy = [0] * len(self._actors)
        queue = iter(items)
        while True:
            while len(pending) < self.max_in_flight:
                item = next(queue, None)
                if item is None:
                    break
                index = min(range(len(busy)), key=busy.__getitem__)
                pending[call(self._actors[index], item)] = (item, index, time.perf_counter())
                busy[index] += 1
            if not pending:
                return
            done, _ = ray.wait(list(pending), num_returns=1)
            item, index, submitted = pending.pop(done[0])
            busy[index] -= 1
            yield item, self._get(done[0], item), submitted

    def _get(self, ref: Any, item: WorkItem) -> Any:
        """The actor's result, or the MediaError of a clip that could not be analysed."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # a bug in the actor: this clip fails, the others go on
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, MediaError):
                return cause
            log.error("internal error analysing %s: %s", item.source, exc)
            return internal_error(cause)
        except ray.exceptions.RayError as exc:  # an actor died beyond its retries
            log.error("worker lost analysing %s: %s", item.source, exc)
            return internal_error(exc)

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown()


@ray.remote
class ClipActor:
    """One process, every model once: the in-process Analyzer, `config.concurrent_clips` clips at a time
    (Ray runs that many of its calls at once, in threads)."""

    def __init__(self, config: AnalyzerConfig) -> None:
        _one_thread()
        from pipeline.analyze import Analyzer

        self.analyzer = Analyzer(config)
        # Every model's first call (lazy loads, label embeddings) runs here, once, before two clips could
        # race into it.
        self.analyzer.warm_up()

    def ready(self) -> bool:
        return True

    def analyze(self, source: str, labels: LabelSet | None) -> Prediction:
        return self.analyzer.analyze(source, labels)  # never raises for bad input

    def encode(self, source: str) -> EncodedMedia | MediaError:
        from pipeline.executor import encode_source

        return encode_source(self.analyzer, source)


def _one_thread() -> None:
    """One intra-op thread per actor process: parallelism comes from the processes (measured faster)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
