"""`reelsense serve`: settings from the environment (and an env file), flags on top, then uvicorn."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from service.settings import Settings, auth_problem


def serve(
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    env_file: Path | None = None,
    log_level: str = "info",
    use_ray: bool = False,
    address: str | None = None,
    replicas: int | None = None,
) -> int:
    """Run the API until interrupted; 2 (with a message) when the configuration must not start."""
    flags = (("host", host), ("port", port), ("workers", workers), ("ray_address", address))
    overrides: dict[str, Any] = {name: value for name, value in flags if value is not None}
    if replicas is not None:
        overrides["ray_replicas"] = replicas
    if env_file is not None:
        overrides["_env_file"] = env_file  # pydantic-settings' own init argument
    settings = Settings(**overrides)
    problem = auth_problem(settings)
    if problem is not None:
        print(f"reelsense: {problem}", file=sys.stderr)
        return 2
    if use_ray:
        from service.ray_serve import run_until_interrupted

        return run_until_interrupted(settings)
    import uvicorn

    from service.app import create_app

    # One process: the job store and the worker pool live in it (uvicorn --workers would duplicate both).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)
    return 0
