"""Core packages stay importable without the distributed/serving stack, and importing them does no work.

Imports run one way: service and scripts -> pipeline -> models -> core (shared errors), never back.
Only `pipeline.ray_engine` (the engine's edge) may import ray; nothing in `pipeline/` or `models/` imports
the web stack; and the media stages do not pull in the model libraries just by being imported.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

import core
import models
import pipeline
from tests.fresh_interpreter import modules_loaded_by

ROOT = Path(__file__).resolve().parent.parent
# Which of the project's packages each package may import (besides itself).
ALLOWED = {
    "core": set(),
    "models": {"core"},
    "pipeline": {"core", "models"},
}
PROJECT = {"core", "models", "pipeline", "service", "scripts", "tests"}

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
    "core.errors",
    "models.bundled",
    "models.devices",
    "models.specs",
    "models.types",
    "models.wordnet",
]


def _loaded_after_import(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    return modules_loaded_by(f"for name in {modules!r}: __import__(name)", watched)


def test_core_packages_do_not_import_ray_or_the_web_stack() -> None:
    modules = sorted(
        info.name
        for package in (core, pipeline, models)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".")
        if info.name not in RAY_EDGE
    )
    assert {"core.errors", "pipeline.analyze", "models.fusion"} <= set(modules)
    assert _loaded_after_import(modules, ("ray", "fastapi", "uvicorn")) == []


def test_media_stages_do_not_load_model_libraries_at_import() -> None:
    watched = ("torch", "faster_whisper", "librosa", "numba", "transformers")
    assert _loaded_after_import(MEDIA_MODULES, watched) == []


def _project_imports(path: Path) -> set[str]:
    """The project packages `path` imports anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    wrong = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in files
        if (bad := _project_imports(path) - ALLOWED[package] - {package})
    }
    assert wrong == {}


def test_the_layering_check_sees_a_backward_import(tmp_path: Path) -> None:
    module = tmp_path / "backward.py"
    module.write_text("def f():\n    from pipeline.types import Audio\n    import core.errors\n")
    assert _project_imports(module) == {"pipeline", "core"}
