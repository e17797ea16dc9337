"""Core packages stay importable without the distributed/serving stack, and importing them does no work.

Only `pipeline.ray_engine` (the engine's edge) may import ray; nothing in `pipeline/` or `models/` imports
the web stack; and the media stages do not pull in the model libraries just by being imported.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import models
import pipeline

RAY_EDGE = {"pipeline.ray_engine"}
MEDIA_MODULES = [
    "pipeline.audio",
    "pipeline.audio_features",
    "pipeline.config",
    "pipeline.fetch",
    "pipeline.frames",
    "pipeline.decode_pyav",
    "pipeline.decode_decord",
    "pipeline.media",
    "pipeline.netguard",
    "pipeline.probe",
    "pipeline.transcribe",
    "models.bundled",
    "models.devices",
    "models.specs",
]


def _loaded_after_import(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    code = (
        "import sys\n"
        f"for name in {modules!r}: __import__(name)\n"
        f"print(','.join(m for m in {watched!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in done.stdout.strip().split(",") if m]


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
    assert _loaded_after_import(MEDIA_MODULES, ("torch", "faster_whisper", "librosa", "transformers")) == []
