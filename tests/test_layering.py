"""Core packages stay importable without the serving stack, and importing them does no work."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
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


def test_core_modules_do_not_import_ray_or_heavy_models_at_import() -> None:
    code = (
        "import sys\n"
        f"for name in {CORE_MODULES!r}: __import__(name)\n"
        "heavy = ('ray', 'fastapi', 'uvicorn', 'torch', 'faster_whisper', 'librosa')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"imported at module import time: {done.stdout.strip()}"
