"""`reelsense serve --ray`: the same FastAPI app on Ray Serve, its analyses on replicas across a cluster.

Two deployments:
- `AnalyzerReplica` (N replicas, `ray_replicas`): loads every model in its constructor, so a replica that
  cannot load fails the deployment (and `serve --ray` with it) instead of reporting healthy; one analysis at
  a time (an Analyzer is not thread-safe); a GPU each when the cluster has GPUs. Progress streams back;
  a cancelled stream stops the analysis inside the replica.
- `Ingress` (one replica): the app from `service.app.create_app` behind `serve.ingress`: HTTP, auth, the
  SQLite job store and the bounded queue. Its worker threads (one per analyzer replica) hand each task to
  the analyzers through a deployment handle instead of a local Analyzer. One replica because the job
  store is one SQLite file and restarts mark its unfinished jobs interrupted.

Uploads travel to the replica as bytes (the replica may be on another node); URLs are fetched by the
replica, under the same address rules. Fine-tuned heads are directories that every node must see at the
same path (`heads_dir` on shared storage). This module is one of the edges that import ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve.deployment import Deployment
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from core.errors import ErrorCode, MediaError
from models.labels import LabelSet
from pipeline.prediction import Prediction, internal_error
from pipeline.progress import ProgressFn, StopFn
from service.settings import Settings

log = logging.getLogger("reelsense.service")
APP_NAME = "reelsense"
INGRESS_CPUS = 0.5  # HTTP, the job store and waiting on handles: light work
INGRESS_MAX_ONGOING = 1000  # requests the ingress replica takes at once (most are quick: polls, 429s)
CONSTRUCTOR_RETRIES = 2  # a replica that fails to start is retried this often, then the deploy fails
STOP_POLL_S = 0.25  # how often the ingress asks whether a running task must stop (cancelled, too slow)


@dataclass(frozen=True)
class RemoteAnalysis:
    """One task as it travels to a replica: an upload's bytes (or None for a URL) and its options."""

    source: str  # the URL, or the ingress's local path of the upload (the name the result must carry)
    data: bytes | None
    labels: LabelSet | None
    head: str | None


@dataclass(frozen=True)
class StageEvent:
    stage: str
    fraction: float


class AnalyzerReplica:
    """A Serve replica owning one Analyzer. `analyze` streams StageEvents, then the Prediction."""

    def __init__(self, settings_values: dict[str, Any]) -> None:
        from pipeline.analyze import Analyzer  # torch loads here, in the replica, not at import

        settings = settings_from(settings_values)
        self._analyzer = Analyzer(settings.analyzer_config())
        # Serve routes to a replica once its constructor returns: warm up first, so no user pays for it.
        self._analyzer.warm_up()
        # Serve sends one request at a time (max_ongoing_requests=1), but a cancelled stream lets the next
        # one start while this analysis is still stopping: the lock keeps the Analyzer to one caller.
        self._busy = threading.Lock()

    async def analyze(self, request: RemoteAnalysis) -> AsyncIterator[StageEvent | Prediction]:
        """The analysis runs in a thread beside this generator, which forwards its progress as it comes.
        An async generator, so that a cancelled or abandoned stream reaches it (Serve cancels its await;
        a sync generator would be drained to the end in Serve's thread): the analysis is then told to stop
        at its next check, and the replica is free again within a Whisper segment instead of a whole video."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[StageEvent | Prediction] = asyncio.Queue()
        stop = threading.Event()
        worker = threading.Thread(
            target=self._run,
            args=(request, lambda event: loop.call_soon_threadsafe(events.put_nowait, event), stop),
            daemon=True,
        )
        worker.start()
        try:
            while True:
                event = await events.get()
                yield event
                if isinstance(event, Prediction):
                    return
        finally:
            stop.set()  # a no-op once the Prediction is out; else the caller is gone: stop the analysis

    def _run(
        self, request: RemoteAnalysis, send: Callable[[StageEvent | Prediction], None], stop: threading.Event
    ) -> None:
        def report(stage: str, fraction: float) -> None:
            send(StageEvent(stage, fraction))

        def should_stop() -> MediaError | None:
            return MediaError(ErrorCode.CANCELLED, "the request was cancelled") if stop.is_set() else None

        try:
            with self._busy, _local_copy(request) as source:
                prediction = self._analyzer.analyze(
                    source, request.labels, head=request.head, progress=report, should_stop=should_stop
                )
                send(prediction.with_source(request.source))
        except Exception as exc:  # a bug or a full disk: this task fails, the replica goes on
            log.exception("internal error analysing %s", request.source)
            send(Prediction.failed(request.source, internal_error(exc)))


@contextlib.contextmanager
def _local_copy(request: RemoteAnalysis) -> Iterator[str]:
    """The source as this replica can open it: the URL itself, or the upload's bytes in a temp file."""
    if request.data is None:
        yield request.source
        return
    with tempfile.TemporaryDirectory(prefix="reelsense-replica-") as folder:
        path = Path(folder) / "upload"  # no client suffix: it could pick a demuxer (.m3u8: HLS)
        path.write_bytes(request.data)
        yield str(path)


class ServeAnalyzerClient:
    """`service.worker.AnalyzerLike` over a deployment handle: what the ingress's worker threads call."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle.options(stream=True)

    def analyze(
        self,
        source: str,
        labels: LabelSet | None = None,
        *,
        head: str | Path | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> Prediction:
        """The replica's Prediction. `should_stop` is asked every STOP_POLL_S while the replica works: once
        it says stop, the stream is cancelled (the replica's analysis stops at its next check) and this task
        fails with its reason."""
        upload = Path(source)
        stopped: list[MediaError] = []
        try:  # the worker threads are not the event loop, so the handle's blocking iteration is allowed
            data = upload.read_bytes() if upload.is_file() else None
            request = RemoteAnalysis(source, data, labels, str(head) if head is not None else None)
            events = cast(DeploymentResponseGenerator[Any], self._handle.analyze.remote(request))
            with _stop_watch(events, should_stop, stopped):
                for event in events:
                    if isinstance(event, Prediction):
                        return event
                    if stopped:
                        break
                    if progress is not None:
                        progress(event.stage, event.fraction)
        except Exception as exc:  # a replica died mid-task, the cluster went away, or we cancelled
            if not stopped:
                log.exception("analyzer replica failed on %s", source)
                return Prediction.failed(source, internal_error(exc))
        if stopped:
            return Prediction.failed(source, stopped[0])
        return Prediction.failed(source, internal_error(RuntimeError("the replica sent no result")))


@contextlib.contextmanager
def _stop_watch(
    events: DeploymentResponseGenerator[Any], should_stop: StopFn | None, stopped: list[MediaError]
) -> Iterator[None]:
    """Ask `should_stop` every STOP_POLL_S in a thread while the block runs (a replica streams nothing
    during transcription, which can last minutes); on a reason, record it in `stopped` and cancel the
    stream, which ends the block's iteration."""
    if should_stop is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_S):
            reason = should_stop()
            if reason is not None:
                stopped.append(reason)
                events.cancel()
                return

    watcher = threading.Thread(target=watch, name="reelsense-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


@serve.ingress()
class Ingress:
    """The API replica: `create_app` with worker threads that call the analyzer replicas."""

    def __init__(self, settings_values: dict[str, Any], analyzers: DeploymentHandle) -> None:
        self._settings = settings_from(settings_values)
        self._analyzers = analyzers

    def __serve_build_asgi_app__(self) -> FastAPI:
        from service.app import create_app

        return create_app(self._settings, lambda config: ServeAnalyzerClient(self._analyzers))


def settings_from(values: dict[str, Any]) -> Settings:
    """Settings rebuilt on a replica from the driver's values (no env file: the driver already read it)."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def gpus_per_replica(settings: Settings, cluster_gpus: float) -> float:
    """A whole GPU per analyzer replica when the cluster has GPUs (unless the device is forced to cpu);
    `ray_gpus_per_replica` overrides (a fraction packs several replicas on one card)."""
    if settings.ray_gpus_per_replica is not None:
        return settings.ray_gpus_per_replica
    return 1.0 if cluster_gpus > 0 and settings.device != "cpu" else 0.0


def build_app(settings: Settings, cluster_gpus: float) -> serve.Application:
    """The Serve application: ingress bound to the analyzer deployment, sized from `settings`."""
    # The ingress runs one worker thread per analyzer replica: each keeps one analysis in flight. Paths
    # are made absolute here: a replica's working directory is not the driver's.
    values = settings.model_dump(mode="json") | {
        "workers": settings.ray_replicas,
        "jobs_db": str(settings.jobs_db.resolve()),
        "upload_dir": str(settings.upload_dir.resolve()) if settings.upload_dir else None,
        "heads_dir": str(settings.heads_dir.resolve()) if settings.heads_dir else None,
    }
    analyzers = (
        _deployment(AnalyzerReplica)
        .options(
            name="analyzer",
            num_replicas=settings.ray_replicas,
            max_ongoing_requests=1,
            # A model that cannot load does not load on the 20th try either (Serve's default): fail the
            # deployment after a few, so `serve --ray` says why within a minute instead of retrying.
            max_constructor_retry_count=CONSTRUCTOR_RETRIES,
            ray_actor_options={
                "num_cpus": settings.ray_cpus_per_replica,
                "num_gpus": gpus_per_replica(settings, cluster_gpus),
            },
        )
        .bind(values)
    )
    # Pinned to the head node, so the job store is one file in one known place across restarts.
    placement = {"num_cpus": INGRESS_CPUS, "resources": {"node:__internal_head__": 0.001}}
    ingress = _deployment(Ingress).options(
        name="ingress",
        num_replicas=1,
        ray_actor_options=placement,
        # Let requests through to the app, whose bounded queue answers 429 with Retry-After. Serve's
        # default (5 at a time) parks the rest in the proxy's unbounded queue: no 429, growing latency.
        max_ongoing_requests=INGRESS_MAX_ONGOING,
    )
    return ingress.bind(values, analyzers)


def _deployment(cls: type) -> Deployment:
    """`serve.deployment(cls)`, typed (its stubs cannot tell the class form from the options form)."""
    return cast(Deployment, serve.deployment(cls))


def start(settings: Settings) -> None:
    """Connect to (or start) Ray, start Serve's HTTP proxy on host:port, deploy; returns when running."""
    if not ray.is_initialized():
        ray.init(address=settings.ray_address, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    serve.run(build_app(settings, cluster_gpus), name=APP_NAME, route_prefix="/", blocking=False)


def stop() -> None:
    """Remove the application and Serve; leaves Ray itself to whoever started it."""
    serve.shutdown()


def _deployment_problems() -> list[str]:
    """Each failed deployment's reason, as Serve recorded it: the last line of the replica's traceback
    (the application's own message only says which deployment failed)."""
    try:
        app = serve.status().applications.get(APP_NAME)
    except Exception:  # a status we cannot read must not hide the failure itself
        return []
    if app is None:
        return []
    problems = []
    for name, deployment in app.deployments.items():
        lines = [line.strip() for line in (deployment.message or "").splitlines() if line.strip()]
        if lines:
            problems.append(f"{name}: {lines[-1]}")
    return problems


def run_until_interrupted(settings: Settings) -> int:
    """`reelsense serve --ray`: deploy, then wait for SIGINT/SIGTERM and take the app down. 1, with Serve's
    reason, when the deployment fails (a replica that cannot load its models)."""
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        start(settings)
    except RuntimeError as exc:  # serve.run: the application went to DEPLOY_FAILED
        print(f"reelsense: the Ray Serve deployment failed: {exc}", file=sys.stderr, flush=True)
        for problem in _deployment_problems():
            print(f"reelsense: {problem}", file=sys.stderr, flush=True)
        stop()
        ray.shutdown()
        return 1
    where = f"http://{settings.host}:{settings.port}"
    log.info("reelsense on Ray Serve at %s (%d analyzer replicas)", where, settings.ray_replicas)
    print(f"reelsense: serving on {where} with Ray Serve; Ctrl-C stops", flush=True)
    stopped.wait()
    stop()
    ray.shutdown()
    return 0
