"""Core packages stay importable without the distributed/serving stack, and importing them does no work.

Only `pipeline.ray_engine` (the engine's edge) may import ray; nothing in `pipeline/` or `models/` imports
the web stack; and the media stages do not pull in the model libraries just by being imported.
"""

from __future__ import annotations

import pkgutil

import models
import pipeline
from tests.fresh_interpreter import modules_loaded_by

RAY_EDGE = {"pipeline.ray_engine"}
MEDIA_MODULES = [
    "pipeline.audio",
    "pipeline.audio_features",
    "pipeline.config",
    "pipeline.fetch",
    "pipeline.frames",
    "pipeline.decode_pyav",
    "pipeline.decode_decord",
    "pipeline.dsp",
    "pipeline.media",
    "pipeline.netguard",
    "pipeline.probe",
    "pipeline.transcribe",
    "models.bundled",
    "models.devices",
    "models.specs",
    "models.wordnet",
]


def _loaded_after_import(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    return modules_loaded_by(f"for name in {modules!r}: __import__(name)", watched)


def test_core_packages_do_not_import_ray_or_the_web_stack() -> None:
    core = sorted(
        info.name
        for package in (pipeline, models)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".")
        if info.name not in RAY_EDGE
    )
    assert "pipeline.analyze" in core and "models.fusion" in core
    assert _loaded_after_import(core, ("ray", "fastapi", "uvicorn")) == []


def test_media_stages_do_not_load_model_libraries_at_import() -> None:
    watched = ("torch", "faster_whisper", "librosa", "numba", "transformers")
    assert _loaded_after_import(MEDIA_MODULES, watched) == []
