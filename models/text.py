"""Sentence embeddings: bundled all-MiniLM-L6-v2 (384-d, English) or any transformers encoder, mean-pooled.

all-MiniLM-L6-v2 is a sentence-transformers model: token embeddings averaged over the attention mask, then
L2-normalised (its modules.json: Transformer, Pooling(mean), Normalize). The same recipe is done here with
plain transformers, so no sentence-transformers dependency, and it applies unchanged to `local:`/`hf:`
encoders (a BERT-like model whose output has `last_hidden_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.bundled import package_model_dir
from models.devices import resolve_device
from models.specs import ModelSpec, parse_model_spec
from models.types import F32
from pipeline.errors import ErrorCode, MediaError

DEFAULT_TEXT_SPEC = "package:minilm-l6-v2"
MINILM_MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces (sentence_bert_config)


class TextEncoder:
    """Loads a text encoder once; `encode` maps sentences to L2-normalised (N, D) float32 embeddings.

    spec: ``package:minilm-l6-v2`` (default), ``local:<dir>`` or ``hf:<org/name>@<rev>`` (a transformers
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
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self._tokenizer, model = _load(self.spec)
        self._model = model.eval().to(device=self.device, dtype=self.dtype)
        config: Any = model.config
        # Never more tokens than the model has positions (BERT: 512), whatever the caller asks.
        self.max_length = min(max_length, int(getattr(config, "max_position_embeddings", max_length)))
        self._dim = int(config.hidden_size)

    @property
    def dim(self) -> int:
        """Embedding width D (384 for MiniLM-L6)."""
        return self._dim

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> F32:
        """N texts -> (N, D) float32, each row L2-normalised. N may be 0; an empty string is a valid text."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
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
