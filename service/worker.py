"""The analysis workers: N threads, each owning its Analyzer (not thread-safe), fed by one bounded queue.

Both endpoints go through it: POST /v1/analyze waits on the task's future (up to the sync limit), POST
/v1/jobs returns at once and the worker records the outcome in the job store. A full queue is a 429,
never an unbounded backlog. A task owns its uploaded file and removes it whatever happens.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.errors import ErrorCode, MediaError
from models.labels import LabelSet
from pipeline.config import AnalyzerConfig
from pipeline.prediction import Prediction, internal_error
from pipeline.progress import ProgressFn, StopFn
from service.errors import ApiError
from service.jobs import JobStore
from service.metrics import Metrics
from service.settings import Settings
from service.webhooks import WebhookSender

log = logging.getLogger("reelsense.service")
PRUNE_EVERY_S = 3600.0  # how often finished jobs past JOB_RETENTION_DAYS are deleted


class AnalyzerLike(Protocol):
    """What a worker needs: `pipeline.analyze.Analyzer`, or the Ray Serve client in service/ray_serve.py.
    Fine-tuned heads load inside it beside the default one, sharing its encoders."""

    def analyze(
        self,
        source: str,
        labels: LabelSet | None = None,
        *,
        head: str | Path | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> Prediction: ...


AnalyzerFactory = Callable[[AnalyzerConfig], AnalyzerLike]


@runtime_checkable
class WarmsUp(Protocol):
    """An analyzer that can run one warm-up analysis (`pipeline.analyze.Analyzer`). A worker whose analyzer
    has none (a Ray Serve client, whose replicas warm up themselves; a test's fake) is ready once built."""

    def warm_up(self) -> object: ...


def _hide_paths(prediction: Prediction, task: Task, heads_dir: Path | None) -> Prediction:
    """No server path in what the client sees: a head's directory becomes its name (a broken head's
    checkpoint error names its files)."""
    error = prediction.error
    if error is None:
        return prediction
    message = error.message
    if task.head is not None:
        message = message.replace(str(task.head), f"head {task.head.name!r}")
    if heads_dir is not None:
        message = message.replace(str(heads_dir.resolve()), "<heads>").replace(str(heads_dir), "<heads>")
    return (
        replace(prediction, error=MediaError(error.code, message)) if message != error.message else prediction
    )


def default_analyzer_factory(config: AnalyzerConfig) -> AnalyzerLike:
    from pipeline.analyze import Analyzer  # imported here: loading torch is the lifespan's job

    return Analyzer(config)


@dataclass
class Task:
    source: str  # an http(s) URL or the local path of an upload
    shown_source: str  # what the result calls it ("upload:clip.mp4", never a server path)
    labels: LabelSet | None = None
    head: Path | None = None
    upload: Path | None = None  # removed once the task is done or skipped
    job_id: str | None = None
    future: Future[Prediction] = field(default_factory=Future)
    stop_reason: MediaError | None = None  # set from another thread: the analysis stops at its next check

    def discard_upload(self) -> None:
        if self.upload is not None:
            self.upload.unlink(missing_ok=True)

    def stop(self, reason: MediaError) -> None:
        """Ask the running analysis to stop (a cancel, or a caller that gave up waiting)."""
        if self.stop_reason is None:
            self.stop_reason = reason


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        factory: AnalyzerFactory,
        store: JobStore,
        metrics: Metrics,
        webhooks: WebhookSender,
    ) -> None:
        self._settings, self._factory, self._store = settings, factory, store
        self._metrics, self._webhooks = metrics, webhooks
        self._queue: queue.Queue[Task] = queue.Queue(maxsize=settings.queue_size)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loaded = 0
        self._all_ready = threading.Event()  # every worker loaded and warmed up
        self._running: dict[int, Task] = {}  # id(task) -> task, while a worker analyses it
        self._lock = threading.Lock()
        # Models load one worker at a time: transformers' lazy imports are not thread-safe (two workers
        # importing at once got "cannot import name 'AutoConfig'"), and loading in parallel saves nothing.
        self._load_lock = threading.Lock()
        self.load_error: str | None = None
        self._pruned_at = 0.0  # time.monotonic() of the last retention pass (0: never)

    @property
    def ready(self) -> bool:
        """Every worker has loaded its models and analysed the warm-up clip."""
        with self._lock:
            return self._loaded == self._settings.workers and self.load_error is None

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until `ready` (True) or until `timeout_s` passes or loading fails (False)."""
        self._all_ready.wait(timeout_s)
        return self.ready

    def depth(self) -> int:
        return self._queue.qsize()

    def busy(self) -> int:
        """Workers analysing right now."""
        with self._lock:
            return len(self._running)

    def cancel(self, job_id: str) -> None:
        """Stop the running analysis of `job_id`, if one is running (a queued one is skipped anyway)."""
        with self._lock:
            running = [task for task in self._running.values() if task.job_id == job_id]
        for task in running:
            task.stop(MediaError(ErrorCode.CANCELLED, "cancelled by the client"))

    def start(self) -> None:
        """Start the threads; each loads its models and runs the warm-up analysis in the background
        (readyz says when every worker is done)."""
        for index in range(self._settings.workers):
            thread = threading.Thread(target=self._run, name=f"reelsense-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 2.0) -> None:
        # An analysis in flight cannot be interrupted; its thread is a daemon and its result is
        # dropped (the job stays `running` in the store and the next start marks it interrupted).
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        while not self._queue.empty():
            self._queue.get_nowait().discard_upload()

    def submit(self, task: Task) -> None:
        """Queue `task`, or raise a 429 when the queue is full."""
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            retry = str(self._settings.retry_after_s)
            raise ApiError(
                429, "queue_full", "the service is busy; retry later", {"Retry-After": retry}
            ) from None

    def _run(self) -> None:
        analyzer: AnalyzerLike | None = None
        try:
            with self._load_lock:
                built = self._factory(self._settings.analyzer_config())
                if isinstance(built, WarmsUp):
                    # Before readiness: the first user would otherwise pay the first call's costs. An
                    # analyzer that fails on the generated clip serves nobody (model_unavailable).
                    built.warm_up()
            analyzer = built
            with self._lock:
                self._loaded += 1
                if self._loaded == self._settings.workers:
                    self._all_ready.set()
        except Exception as exc:  # the service stays up and says why in /readyz
            log.exception("models failed to load")
            self.load_error = f"{type(exc).__name__}: {exc}"[:500]
            self._all_ready.set()  # nobody waits for a readiness that will not come
        while not self._stop.is_set():
            self._prune_if_due()
            try:
                task = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._handle(task, analyzer)
            except Exception:  # a bug in the bookkeeping must not kill the worker
                log.exception("worker failed on %s", task.shown_source)
            finally:
                task.discard_upload()

    def _prune_if_due(self) -> None:
        """Delete finished jobs past the retention, at start and then hourly (one worker does it)."""
        days = self._settings.job_retention_days
        with self._lock:
            due = days > 0 and (not self._pruned_at or time.monotonic() - self._pruned_at > PRUNE_EVERY_S)
            if due:
                self._pruned_at = time.monotonic()
        if due:
            pruned = self._store.prune(days * 86400)
            if pruned:
                log.info("%d job(s) older than %g days deleted", pruned, days)

    def _handle(self, task: Task, analyzer: AnalyzerLike | None) -> None:
        if task.job_id is not None and not self._store.start(task.job_id, "started"):
            return  # cancelled while queued
        if not task.future.set_running_or_notify_cancel():
            return  # the synchronous caller gave up while it was queued
        with self._lock:
            self._running[id(task)] = task
        try:
            prediction = self._analyze(task, analyzer)
        finally:
            with self._lock:
                self._running.pop(id(task), None)
            # Before the answer is released: a caller that has its answer finds its upload gone. The
            # worker loop's discard still runs after this; it removes the uploads of tasks skipped above.
            task.discard_upload()
        if self._stop.is_set():
            return
        if prediction.status == "ok":
            self._metrics.observe_timings(prediction.timings_ms)
        task.future.set_result(prediction)
        if task.job_id is not None:
            self._record(task.job_id, prediction)

    def _analyze(self, task: Task, analyzer: AnalyzerLike | None) -> Prediction:
        job_id = task.job_id
        progress = None if job_id is None else lambda stage, done: self._store.progress(job_id, stage, done)
        try:
            if analyzer is None:
                raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"models failed to load: {self.load_error}")
            prediction = analyzer.analyze(
                task.source, task.labels, head=task.head, progress=progress, should_stop=self._stopper(task)
            )
        except MediaError as exc:
            prediction = Prediction.failed(task.source, exc)
        except Exception as exc:
            log.exception("internal error analysing %s", task.shown_source)
            prediction = Prediction.failed(task.source, internal_error(exc))
        return _hide_paths(prediction.with_source(task.shown_source), task, self._settings.heads_dir)

    def _stopper(self, task: Task) -> StopFn:
        """Why `task` must stop now: stopped from outside, or past ANALYSIS_TIMEOUT_S (None: go on)."""
        limit_s = self._settings.analysis_timeout_s
        deadline = time.monotonic() + limit_s

        def should_stop() -> MediaError | None:
            if task.stop_reason is not None:
                return task.stop_reason
            if time.monotonic() > deadline:
                return MediaError(ErrorCode.ANALYSIS_TIMEOUT, f"the analysis took longer than {limit_s:g} s")
            return None

        return should_stop

    def _record(self, job_id: str, prediction: Prediction) -> None:
        error = prediction.error.to_dict() if prediction.error is not None else None
        result = prediction.to_dict() if error is None else None
        if not self._store.finish(job_id, result=result, error=error):
            return  # cancelled while running: the result is discarded
        job = self._store.get(job_id)
        if job is not None and job.webhook_url:
            self._webhooks.send(job.webhook_url, job.to_dict())
