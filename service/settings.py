"""Service settings: environment variables prefixed REELSENSE_ (and an env file when one is named), read at
the edge.

Everything below `service/` receives a `Settings` value; `pipeline/` and `models/` get the frozen
dataclasses built from it (`analyzer_config`), never the environment.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.config import (
    AnalyzerConfig,
    Backend,
    Device,
    FetchConfig,
    FrameConfig,
    MediaConfig,
    ResizeMode,
    TranscribeConfig,
)

MB = 1024 * 1024
# The analysis defaults are the pipeline's own (pipeline/config.py), written there once.
_ANALYZER, _FETCH, _FRAMES = AnalyzerConfig(), FetchConfig(), FrameConfig()


def default_jobs_db(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/reelsense/jobs.sqlite3, else ~/.local/state/reelsense/jobs.sqlite3: the user's state
    dir (XDG base directories), so no stray database appears wherever `serve` happens to start."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "reelsense" / "jobs.sqlite3"


class Settings(BaseSettings):
    # No env file unless one is named (`serve --env-file`, `Settings(_env_file=...)`): a `.env` in whatever
    # directory the server starts in must not configure it.
    model_config = SettingsConfigDict(env_prefix="REELSENSE_", env_file=None, extra="ignore")

    host: str = "127.0.0.1"  # where `reelsense serve` binds; API keys are required beyond loopback
    port: int = 8000
    workers: Annotated[int, Field(ge=1)] = 1  # analysis threads, each with its own Analyzer (not thread-safe)
    queue_size: Annotated[int, Field(ge=1)] = 8  # tasks waiting beyond the running ones; more get 429
    retry_after_s: int = 5  # the Retry-After a 429 suggests
    sync_timeout_s: float = 60.0  # POST /v1/analyze answers 504 after this (and its analysis is stopped)
    # Any one analysis (sync or job) is stopped past this: at the next stage boundary, or between Whisper's
    # segments; the job fails with analysis_timeout.
    analysis_timeout_s: Annotated[float, Field(gt=0)] = 1800.0
    max_upload_mb: float = 200.0  # uploads are refused (413) while streaming once past this
    jobs_db: Path = Field(default_factory=default_jobs_db)  # SQLite job store (WAL), see default_jobs_db
    job_retention_days: Annotated[float, Field(ge=0)] = 30.0  # finished jobs older are deleted; 0: kept
    upload_dir: Path | None = None  # uploads wait here for their job; None: a temp dir per process
    heads_dir: Path | None = None  # fine-tuned heads selectable by name (`head`); None: zero-shot only
    # Comma-separated keys accepted in X-API-Key or Authorization: Bearer. Empty: no auth, which
    # `reelsense serve` allows on loopback only unless `insecure_no_auth` says otherwise.
    api_keys: str = ""
    # Keys that see, read and cancel every job (operators); each API_KEYS key sees only its own jobs.
    admin_api_keys: str = ""
    insecure_no_auth: bool = False
    # Comma-separated Host names the service answers to (DNS rebinding). Empty: on a loopback bind,
    # loopback names and addresses only; on any other bind, any name (API keys are required there).
    allowed_hosts: str = ""
    # Comma-separated CIDRs that video URLs may reach although internal. Empty: none.
    allow_networks: str = ""
    # The same for webhook targets, separately: opening a media server's network opens no webhook to it.
    webhook_allow_networks: str = ""
    max_download_mb: float = _FETCH.max_bytes / MB
    fetch_timeout_s: float = _FETCH.total_timeout_s
    webhook_retries: Annotated[int, Field(ge=0)] = 3  # extra attempts after a failed delivery
    webhook_backoff_s: float = 1.0  # doubled after each retry
    webhook_timeout_s: float = 10.0  # one attempt, everything included (a dribbling receiver is cut)
    webhook_workers: Annotated[int, Field(ge=1)] = 8  # receivers served at once (each gets one thread)
    # The analysis: every option `reelsense analyze` has a flag for, with the same meaning and default.
    device: Device = _ANALYZER.device  # where every model runs
    frames: Annotated[int, Field(ge=1)] = _FRAMES.num_frames  # --frames
    fps: Annotated[float, Field(gt=0)] | None = _FRAMES.fps  # --fps: a fixed rate instead of `frames`
    max_frames: Annotated[int, Field(ge=1)] = _FRAMES.max_frames  # --max-frames: the cap for `fps`
    frame_size: Annotated[int, Field(ge=16)] = _FRAMES.size  # --size: frames are SIZE x SIZE
    resize: ResizeMode = _FRAMES.resize  # --resize
    frame_backend: Backend = _FRAMES.backend  # --backend: the frame decoder
    language: str | None = _ANALYZER.media.transcribe.language  # --language: None detects it
    segment_s: Annotated[float, Field(gt=0)] = _ANALYZER.segment_s  # --segment-seconds
    # Frames-stage decode work per video, in decoded megapixels (~4800 1080p frames): bounds one-GOP files.
    decode_budget_mpx: Annotated[float, Field(gt=0)] = _FRAMES.decode_budget_pixels / 1_000_000
    vision_model: str = _ANALYZER.vision_model
    text_model: str = _ANALYZER.text_model
    bridge_model: str = _ANALYZER.bridge_model  # the vision bridge's sentence encoder
    expand_nouns: bool = _ANALYZER.expand_nouns  # --expand-nouns: WordNet hypernyms of transcript nouns
    whisper_model: str = _ANALYZER.media.transcribe.model
    word_timestamps: bool = _ANALYZER.media.transcribe.word_timestamps  # --word-timestamps: each word's times
    cache_dir: str | None = None
    # Longer media is refused (media_too_long), also while decoding.
    max_duration_s: float = _ANALYZER.media.max_duration_s
    # Larger frames: frame_too_large, before decoding.
    max_pixels: Annotated[int, Field(ge=1)] = _ANALYZER.media.max_pixels
    # `reelsense serve --ray` (Ray Serve): where the cluster is (None: RAY_ADDRESS, else a local Ray),
    # how many analyzer replicas (each loads every model), their CPUs, and GPUs each (None: one when the
    # cluster has GPUs and `device` is not cpu; a fraction packs several replicas on a card).
    ray_address: str | None = None
    ray_replicas: Annotated[int, Field(ge=1)] = 1
    ray_cpus_per_replica: Annotated[float, Field(gt=0)] = 1.0
    ray_gpus_per_replica: Annotated[float, Field(ge=0)] | None = None

    @property
    def api_key_list(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.api_keys.split(",") if key.strip())

    @property
    def admin_api_key_list(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.admin_api_keys.split(",") if key.strip())

    @property
    def allow_network_list(self) -> tuple[str, ...]:
        return tuple(net.strip() for net in self.allow_networks.split(",") if net.strip())

    @property
    def webhook_allow_network_list(self) -> tuple[str, ...]:
        return tuple(net.strip() for net in self.webhook_allow_networks.split(",") if net.strip())

    def webhook_fetch_config(self) -> FetchConfig:
        return replace(self.fetch_config(), allow_networks=self.webhook_allow_network_list)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    def fetch_config(self) -> FetchConfig:
        return FetchConfig(
            max_bytes=int(self.max_download_mb * MB),
            total_timeout_s=self.fetch_timeout_s,
            allow_networks=self.allow_network_list,
        )

    def analyzer_config(self) -> AnalyzerConfig:
        """The models' configuration; a request's head loads beside them (`Analyzer.predictor_for`)."""
        media = MediaConfig(
            fetch=self.fetch_config(),
            frames=FrameConfig(
                num_frames=self.frames,
                fps=self.fps,
                max_frames=self.max_frames,
                size=self.frame_size,
                resize=self.resize,
                backend=self.frame_backend,
                decode_budget_pixels=int(self.decode_budget_mpx * 1_000_000),
            ),
            transcribe=TranscribeConfig(
                model=self.whisper_model, language=self.language, word_timestamps=self.word_timestamps
            ),
            max_duration_s=self.max_duration_s,
            max_pixels=self.max_pixels,
        )
        return AnalyzerConfig(
            media=media,
            vision_model=self.vision_model,
            text_model=self.text_model,
            bridge_model=self.bridge_model,
            expand_nouns=self.expand_nouns,
            device=self.device,
            cache_dir=self.cache_dir,
            segment_s=self.segment_s,
        )


@lru_cache
def get_settings() -> Settings:
    """The process's settings (a dependency: tests override it, or pass their own to create_app)."""
    return Settings()


def is_loopback_host(host: str) -> bool:
    """True for hosts only this machine can reach: auth may then be off by default."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name or 0.0.0.0-like wildcard: assume reachable from elsewhere


def auth_problem(settings: Settings) -> str | None:
    """Why this configuration must not start (keys missing on a non-loopback bind), or None."""
    has_keys = settings.api_key_list or settings.admin_api_key_list
    if has_keys or settings.insecure_no_auth or is_loopback_host(settings.host):
        return None
    return (
        f"refusing to listen on {settings.host} without API keys: set REELSENSE_API_KEYS, "
        "or REELSENSE_INSECURE_NO_AUTH=true if something else in front does the authentication"
    )
