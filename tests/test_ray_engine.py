"""The Ray engine gives the in-process engine's answers and fails bad videos alone (a lost actor:
tests/test_ray_restart.py)."""

from __future__ import annotations

import numpy as np
import pytest
import ray  # a required dependency (pyproject.toml): missing, the module fails to collect, never skips

from core.errors import MediaError
from pipeline.analyze import Analyzer, AnalyzerConfig
from pipeline.config import FrameConfig, MediaConfig
from pipeline.executor import WorkItem
from pipeline.ray_engine import ActorLayout, EngineConfig, RayExecutor, plan_layout
from tests.labelled_clips import CLIPS, make_clip

NAMES = ["espresso", "boss_fight", "cat_love", "flood"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerConfig:
    cache = tmp_path_factory.mktemp("ray-cache")
    media = MediaConfig(frames=FrameConfig(num_frames=8))
    return AnalyzerConfig(media=media, device="cpu", cache_dir=str(cache))


@pytest.fixture(scope="module")
def executor(config: AnalyzerConfig):
    # One actor, two clips at once in it (the default layout of a 2-core machine): the answers must not
    # depend on which clip shared the models with which.
    engine = RayExecutor(config, EngineConfig(workers=1, max_in_flight=4))
    assert engine.layout.clips_per_actor == 2
    yield engine
    engine.close()
    assert not ray.is_initialized(), "the engine shuts down the Ray it started"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("ray-clips")
    return {c.name: str(make_clip(c, folder)) for c in CLIPS if c.name in NAMES}


def test_same_predictions_as_in_process(
    executor: RayExecutor, config: AnalyzerConfig, clips, tmp_path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    items = [WorkItem(path, name) for name, path in clips.items()] + [WorkItem(str(broken), "broken")]
    by_key = {item.key: prediction for item, prediction in executor.run(items)}
    assert set(by_key) == {item.key for item in items}
    assert by_key["broken"].status == "error" and by_key["broken"].error.code.value == "invalid_media"
    analyzer = Analyzer(config)
    for name, path in clips.items():
        local, distributed = analyzer.analyze(path), by_key[name]
        assert distributed.status == "ok"
        assert distributed.category.label == local.category.label
        assert distributed.sentiment.label == local.sentiment.label
        assert distributed.transcript.text == local.transcript.text
        for label, p in local.category.scores.items():
            assert distributed.category.scores[label] == pytest.approx(p, abs=1e-4)
        assert [s.category.label for s in distributed.segments] == [s.category.label for s in local.segments]
        assert distributed.model == local.model


def test_encode_gives_the_heads_input_or_the_error(
    executor: RayExecutor, config: AnalyzerConfig, clips, tmp_path
) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    results = dict(executor.encode([WorkItem(clips["espresso"], "espresso"), WorkItem(str(empty), "empty")]))
    by_key = {item.key: result for item, result in results.items()}
    assert isinstance(by_key["empty"], MediaError) and by_key["empty"].code.value == "empty_file"
    encoded = by_key["espresso"]
    local = Analyzer(config).encode_file(clips["espresso"])
    assert encoded.transcript.text == local.transcript.text
    ours, theirs = encoded.encoded, local.encoded
    # The same numbers, not just the same shapes: a stage that returned zeros would pass a shape check.
    assert np.abs(ours.vision.embeddings).max() > 0
    np.testing.assert_allclose(ours.vision.embeddings, theirs.vision.embeddings, atol=1e-4)
    np.testing.assert_allclose(ours.text_embeddings, theirs.text_embeddings, atol=1e-4)
    np.testing.assert_allclose(ours.frame_times_s, theirs.frame_times_s)
    assert ours.audio_embedding is not None and theirs.audio_embedding is not None
    np.testing.assert_allclose(ours.audio_embedding, theirs.audio_embedding, atol=1e-4)
    np.testing.assert_allclose(ours.prosody, theirs.prosody, atol=1e-4)


def test_the_actor_layout_follows_the_clusters_resources() -> None:
    cpu, auto = AnalyzerConfig(device="cpu"), AnalyzerConfig(device="auto")
    # CPUs: one actor per two CPUs, two clips at once in each (one process, the models shared).
    assert plan_layout({"CPU": 2.0}, auto, None) == ActorLayout(1, 2.0, 0.0, clips_per_actor=2)
    assert plan_layout({"CPU": 3.0}, auto, None) == ActorLayout(2, 1.5, 0.0, 2)
    assert plan_layout({"CPU": 1.0}, auto, None) == ActorLayout(1, 1.0, 0.0, 2)
    # More actors than CPUs all fit (a fraction each), instead of waiting forever for a free CPU.
    assert plan_layout({"CPU": 2.0}, auto, 4) == ActorLayout(4, 0.5, 0.0, 2)
    # GPUs: two actors share each card, a clip each; a CPU-only config books none and sizes by CPUs.
    assert plan_layout({"CPU": 16.0, "GPU": 1.0}, auto, None) == ActorLayout(2, 1.0, 0.5, 1)
    assert plan_layout({"CPU": 16.0, "GPU": 4.0}, auto, None) == ActorLayout(8, 1.0, 0.5, 1)
    assert plan_layout({"CPU": 16.0, "GPU": 1.0}, cpu, None) == ActorLayout(8, 2.0, 0.0, 2)
    assert plan_layout({"CPU": 16.0, "GPU": 1.0}, auto, 3).num_gpus == pytest.approx(0.333)
