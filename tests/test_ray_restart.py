"""The Ray engine survives a crashed actor: Ray restarts it and its calls are retried.

In a module of its own, with an engine of its own and its own local Ray: the crash cannot leak into
another test's engine, and no other engine's actors hold the two CPUs this one needs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray  # a required dependency (pyproject.toml): missing, the module fails to collect, never skips

from pipeline.analyze import AnalyzerConfig
from pipeline.config import FrameConfig, MediaConfig
from pipeline.executor import WorkItem
from pipeline.ray_engine import EngineConfig, RayExecutor
from tests.labelled_clips import CLIPS, make_clip

NAMES = ["espresso", "boss_fight", "flood"]


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, then the parent's pid


def _descends_from_us(pid: int) -> bool:
    while pid > 1:
        pid = _parent(pid)
        if pid == os.getpid():
            return True
    return False


def clip_actor_pids() -> set[int]:
    """This test's ClipActor processes, as `ps` shows them (Ray titles them; read from /proc, no Ray
    internals): our local Ray's raylet is our child, so other sessions' Ray workers are left out."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"ray::ClipActor") and _descends_from_us(int(entry.name)):
                pids.add(int(entry.name))
        except OSError:  # the process ended while we looked
            continue
    return pids


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayExecutor]:
    cache = tmp_path_factory.mktemp("ray-restart-cache")
    media = MediaConfig(frames=FrameConfig(num_frames=8))
    # One clip actor: every video queues on it, so a crash always has calls to retry.
    config = AnalyzerConfig(media=media, device="cpu", cache_dir=str(cache))
    executor = RayExecutor(config, EngineConfig(workers=1, max_in_flight=3))
    yield executor
    executor.close()
    assert not ray.is_initialized()


def test_a_killed_actor_is_restarted_and_its_video_retried(engine: RayExecutor, tmp_path: Path) -> None:
    clips = {c.name: str(make_clip(c, tmp_path)) for c in CLIPS if c.name in NAMES}
    (victim,) = clip_actor_pids()  # this engine has just the one
    items = [WorkItem(path, name) for name, path in clips.items()]
    results = engine.run(items)
    first = next(results)  # the others are in flight, waiting on the one clip actor
    os.kill(victim, signal.SIGKILL)  # a crash, from outside: Ray must restart it and retry its calls
    rest = list(results)
    predictions = [prediction for _, prediction in [first, *rest]]
    assert len(predictions) == len(items)
    assert [p.status for p in predictions] == ["ok"] * len(items), [p.error for p in predictions]
    restarted = clip_actor_pids()
    assert len(restarted) == 1 and victim not in restarted, "a new clip actor process replaced it"
    assert all(p.transcript.text for p in predictions)  # the retried calls really transcribed
