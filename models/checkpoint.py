"""Fusion head checkpoints: a directory with the weights and a `head.json` that describes them.

`head.json` holds the `FusionConfig`, the label names the head was trained on, the encoder specs with
their embedding sizes, metrics, a format version and the weights' sha256. The file alone rebuilds the
head, and `load_head` refuses encoders whose dimensions differ from those the head was trained with (a
silent mismatch would be a crash at best and garbage at worst). Weights are safetensors when the package
is importable, else a `torch.save` state dict read back with `weights_only=True`: never a pickle.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from core.errors import ErrorCode, MediaError
from models.fusion import FusionConfig, FusionHead

log = logging.getLogger(__name__)

FORMAT = "reelsense-fusion-head"
FORMAT_VERSION = 1  # bump when head.json or the state dict layout changes incompatibly
META_NAME = "head.json"
SAFETENSORS_NAME = "head.safetensors"
TORCH_NAME = "head.pt"  # fallback when safetensors is not installed
# Encoder name -> the FusionConfig field that gives its embedding size. Labels are embedded by a text
# encoder, possibly another one than the transcript's (a CLIP text tower), so they are recorded apart.
ENCODER_DIM_FIELDS = {"vision": "vision_dim", "audio": "audio_dim", "text": "text_dim", "label": "label_dim"}


@dataclass(frozen=True)
class EncoderRecord:
    """An encoder a head was trained with."""

    spec: str  # model spec string, e.g. "package:whisper-base" (models.specs)
    dim: int  # its embedding size


@dataclass(frozen=True)
class LoadedHead:
    """A head rebuilt from a checkpoint directory, in eval mode on the requested device."""

    head: FusionHead
    config: FusionConfig
    label_names: tuple[str, ...]  # the labels it was fine-tuned on (any label set still works)
    encoder_specs: dict[str, EncoderRecord]
    metrics: dict[str, Any] | None
    extra: dict[str, Any] | None


def _has_safetensors() -> bool:
    return importlib.util.find_spec("safetensors") is not None


def _write_atomic(path: Path, data: bytes) -> None:
    # Write then rename, so a crash mid-save never leaves a half file next to a valid head.json.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_head(
    path_dir: str | Path,
    head: FusionHead,
    config: FusionConfig,
    label_names: list[str] | tuple[str, ...],
    encoder_specs: dict[str, str],
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `head.safetensors` (or `head.pt`) and `head.json` into `path_dir`; return the directory.

    encoder_specs: encoder name ("vision", "audio", "text", "label") -> model spec string; their
    dimensions are taken from `config`. metrics and extra must be JSON-serialisable.
    """
    if head.config != config:
        raise ValueError(f"save_head: the head was built with {head.config}, not {config}")
    unknown = sorted(set(encoder_specs) - set(ENCODER_DIM_FIELDS))
    if unknown:
        raise ValueError(f"save_head: unknown encoder names {unknown}; known: {sorted(ENCODER_DIM_FIELDS)}")
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in head.state_dict().items()}
    if _has_safetensors():
        from safetensors.torch import save as safetensors_save

        weights_name, data = SAFETENSORS_NAME, safetensors_save(state)
    else:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        weights_name, data = TORCH_NAME, buffer.getvalue()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_file": weights_name,
        "weights_sha256": hashlib.sha256(data).hexdigest(),
        "config": asdict(config),
        "label_names": list(label_names),
        "encoders": {
            name: {"spec": spec, "dim": getattr(config, ENCODER_DIM_FIELDS[name])}
            for name, spec in sorted(encoder_specs.items())
        },
        "metrics": metrics,
        "extra": extra,
    }
    directory = Path(path_dir)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / weights_name, data)
    _write_atomic(directory / META_NAME, json.dumps(meta, indent=2, sort_keys=True).encode())
    return directory


def _invalid(directory: Path, why: str) -> MediaError:
    return MediaError(ErrorCode.INVALID_MODEL_SPEC, f"fusion head checkpoint {directory}: {why}")


def _read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / META_NAME
    if not meta_path.is_file():
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE, f"no fusion head checkpoint at {directory} (no {META_NAME})"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(directory, f"{META_NAME} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _invalid(directory, f"{META_NAME} is not a {FORMAT} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _invalid(
            directory,
            f"format version {meta.get('format_version')!r} is not supported (this reelsense reads "
            f"version {FORMAT_VERSION}); use a matching reelsense or re-export the head",
        )
    return meta


def _config_from(directory: Path, raw: Any) -> FusionConfig:
    names = {f.name for f in fields(FusionConfig)}
    # Exact keys: a missing key would silently take today's default instead of what was trained.
    if not isinstance(raw, dict) or set(raw) != names:
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise _invalid(directory, f"config has fields {found}, expected {sorted(names)}")
    try:
        return FusionConfig(**raw)
    except (TypeError, ValueError) as exc:
        raise _invalid(directory, f"invalid config: {exc}") from exc


def _encoders_from(directory: Path, meta: dict[str, Any], config: FusionConfig) -> dict[str, EncoderRecord]:
    records: dict[str, EncoderRecord] = {}
    for name, entry in (meta.get("encoders") or {}).items():
        field = ENCODER_DIM_FIELDS.get(name)
        if field is None or not isinstance(entry, dict):
            raise _invalid(directory, f"unknown encoder entry {name!r}")
        dim = entry.get("dim")
        if dim != getattr(config, field) or not isinstance(dim, int):
            raise _invalid(directory, f"{name} encoder dim {dim!r} disagrees with config.{field}")
        records[name] = EncoderRecord(spec=str(entry.get("spec")), dim=dim)
    return records


def _check_encoders(
    directory: Path, recorded: dict[str, EncoderRecord], expected: dict[str, tuple[str, int]]
) -> None:
    for name, (spec, dim) in sorted(expected.items()):
        found = recorded.get(name)
        if found is None:
            raise _invalid(directory, f"it records no {name!r} encoder (it has: {sorted(recorded)})")
        if found.dim != dim:
            raise _invalid(
                directory,
                f"the head was trained on {found.dim}-d {name} embeddings ({found.spec}) but the configured "
                f"{name} encoder {spec} gives {dim}-d embeddings; use {found.spec} or retrain the head",
            )
        if found.spec != spec:
            log.warning(
                "fusion head %s was trained with %s encoder %s; using %s (same %d-d size): scores may drift",
                directory, name, found.spec, spec, dim,
            )  # fmt: skip


def _read_weights(directory: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    name = meta.get("weights_file")
    # Only the two known names: head.json must not point the loader at another path.
    if name not in (SAFETENSORS_NAME, TORCH_NAME):
        raise _invalid(directory, f"weights_file {name!r} is not {SAFETENSORS_NAME} or {TORCH_NAME}")
    path = directory / name
    if not path.is_file():
        raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"fusion head weights {path} are missing")
    data = path.read_bytes()  # hashed and parsed from the same bytes: nothing can swap the file between
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta.get("weights_sha256"):
        raise MediaError(
            ErrorCode.MODEL_CHECKSUM_MISMATCH,
            f"fusion head weights {path} have sha256 {digest}, but {META_NAME} records "
            f"{meta.get('weights_sha256')}: the file is corrupt or was replaced; save the head again",
        )
    if name == TORCH_NAME:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return dict(state)
    if not _has_safetensors():
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE, f"{path} needs the safetensors package: pip install safetensors"
        )
    from safetensors.torch import load as safetensors_load

    return safetensors_load(data)


def load_head(
    path_dir: str | Path,
    expected_encoders: dict[str, tuple[str, int]],
    device: str | torch.device = "cpu",
) -> LoadedHead:
    """Rebuild the head saved in `path_dir`, checked against the encoders it will be fed.

    expected_encoders: encoder name -> (model spec, embedding dim) of the encoders in use. A different dim
    raises MediaError(INVALID_MODEL_SPEC) naming both; a different spec of the same dim only logs a
    warning. A missing directory or file raises MODEL_UNAVAILABLE, a weights hash that differs from
    head.json MODEL_CHECKSUM_MISMATCH, an unknown format version INVALID_MODEL_SPEC.
    """
    directory = Path(path_dir)
    meta = _read_meta(directory)
    config = _config_from(directory, meta.get("config"))
    encoders = _encoders_from(directory, meta, config)
    _check_encoders(directory, encoders, expected_encoders)
    state = _read_weights(directory, meta)
    head = FusionHead(config)
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise _invalid(directory, f"weights do not fit the recorded config: {exc}") from exc
    head.to(device).eval()
    labels = meta.get("label_names") or []
    return LoadedHead(
        head=head,
        config=config,
        label_names=tuple(str(label) for label in labels),
        encoder_specs=encoders,
        metrics=meta.get("metrics"),
        extra=meta.get("extra"),
    )
