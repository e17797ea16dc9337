"""Per-frame vision features: bundled EfficientNet-Lite0 (ImageNet-1k), or a CLIP model from a dir or the Hub.

- ``package:efficientnet-lite0`` (default, offline): 1280-d pooled features and ImageNet-1k probabilities.
  The embeddings are the raw pooled activations (not L2-normalised): the fusion head learns on them as they
  are, and cosine users can normalise. Preprocessing is the one the Lite models were trained with:
  ``(x - 127) / 128`` on 0..255 RGB ("inception-style mean and stddev for better post-quantization",
  tensorflow/tpu efficientnet/lite), not the torchvision ImageNet mean/std.
- ``local:<dir>`` / ``hf:<org/name>@<rev>`` holding a transformers CLIP model: L2-normalised image
  embeddings in the joint image-text space, no class probabilities, and `encode_text` for label prompts.

`models/data/imagenet_classes.txt` holds the ImageNet-1k class names in index order, one class a line:
the first WordNet lemma, a tab, then all the lemmas. Extracted from timm 1.0.31's
``timm/data/_info/imagenet_synsets.txt`` and ``imagenet_synset_to_lemma.txt`` (Apache-2.0). Two first
lemmas repeat ("crane": the bird, index 134, and the machine, 517; "maillot": 638 and 639).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from core.errors import ErrorCode, MediaError
from models.bundled import get_bundled_model, package_model_dir
from models.devices import resolve_device
from models.specs import DEFAULT_VISION_SPEC, ModelSpec, parse_model_spec
from models.types import F32, VisionOutput

LITE_MEAN, LITE_STD = 127.0, 128.0  # on 0..255 pixel values, all channels
SUPPORTED_MODEL_TYPES = ("clip",)  # config.json model_type values a local:/hf: vision spec may hold


def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet-1k classes in index order, as (first lemma, all lemmas comma-separated)."""
    text = (resources.files("models") / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
    rows = tuple((name, lemmas) for name, lemmas in (line.split("\t") for line in text.splitlines()))
    if len(rows) != 1000:
        raise RuntimeError(
            f"imagenet_classes.txt has {len(rows)} classes, expected 1000: reinstall reelsense"
        )
    return rows


class _Backend(Protocol):
    dim: int
    class_names: tuple[str, ...]
    joint_space: bool

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, H, W, 3) uint8 on the model's device -> (B, D) embeddings, (B, C) probabilities or None."""
        ...


class VisionEncoder:
    """Loads a vision model once; `encode` maps frames to a `VisionOutput`, any number of times.

    spec: ``package:efficientnet-lite0`` (default), or ``local:<dir>`` / ``hf:<org/name>@<rev>`` with a CLIP
      model. device: "auto" | "cpu" | "cuda"; CUDA runs in float16, the CPU in float32.
    batch_size: frames per forward pass (bounds memory for long inputs).
    cpu_threads: on the CPU, sets torch's intra-op thread count to this. That setting is process-wide (it
      affects every torch model in the process): one thread per worker process is the measured best under
      contention (shared/MODELS.md); pass None to leave torch's setting alone.
    """

    def __init__(
        self,
        spec: str = DEFAULT_VISION_SPEC,
        device: str = "auto",
        batch_size: int = 16,
        cpu_threads: int | None = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.spec = parse_model_spec(spec)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        if self.device == "cpu" and cpu_threads is not None:
            torch.set_num_threads(cpu_threads)
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self._backend = _load_backend(self.spec, self.device, self.dtype)

    @property
    def dim(self) -> int:
        """Embedding width D (1280 for EfficientNet-Lite0; the projection size for CLIP)."""
        return self._backend.dim

    @property
    def joint_space(self) -> bool:
        return self._backend.joint_space

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._backend.class_names

    @torch.inference_mode()
    def encode(self, pixels: npt.NDArray[np.uint8]) -> VisionOutput:
        """(T, H, W, 3) uint8 RGB frames -> embeddings (T, D), class_probs (T, C) or None. T may be 0.

        Frames of another size than the model's are scaled (shorter side) and centre-cropped.
        """
        if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {pixels.shape} {pixels.dtype}")
        embeddings: list[F32] = []
        probs: list[F32] = []
        for start in range(0, pixels.shape[0], self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(pixels[start : start + self.batch_size]))
            emb, prob = self._backend.forward(batch.to(self.device))
            embeddings.append(emb.float().cpu().numpy())
            if prob is not None:
                probs.append(prob.float().cpu().numpy())
        classes = len(self.class_names)
        return VisionOutput(
            embeddings=_stack(embeddings, self.dim),
            class_probs=_stack(probs, classes) if classes else None,
            class_names=self.class_names,
            joint_space=self.joint_space,
        )

    def encode_text(self, texts: Sequence[str]) -> F32:
        """Texts -> (N, D) float32 L2-normalised embeddings in the image embeddings' joint space.

        Only for joint-space models (CLIP); raises RuntimeError otherwise.
        """
        if not isinstance(self._backend, _ClipBackend):
            raise RuntimeError(f"{self.spec} has no text tower: encode_text needs a CLIP model")
        return self._backend.encode_text(texts, self.batch_size)


def _stack(rows: list[F32], width: int) -> F32:
    """Concatenate batches; (0, width) when there were none (so an empty input keeps its shape)."""
    if not rows:
        return np.zeros((0, width), dtype=np.float32)
    return np.concatenate(rows).astype(np.float32, copy=False)


def uses_transformers(spec: str) -> bool:
    """Whether loading `spec` imports transformers (everything but the bundled EfficientNet)."""
    return parse_model_spec(spec).scheme != "package"


def _load_backend(spec: ModelSpec, device: str, dtype: torch.dtype) -> _Backend:
    if spec.scheme == "package":
        weights_dir = package_model_dir(spec.name, "efficientnet-lite")
        (weights,) = get_bundled_model(spec.name).files  # one .pth, the table says
        return _LiteBackend(spec.name, weights_dir / weights.name, device, dtype)
    if spec.scheme == "local":
        path = Path(spec.name).expanduser()
        if not path.is_dir():
            raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"{spec}: {path} is not a directory")
        model_type = _local_model_type(path)
    else:
        model_type = _hub_model_type(spec)
    if model_type not in SUPPORTED_MODEL_TYPES:
        found = f"a model of type {model_type!r}" if model_type else "no config.json with a model_type"
        raise MediaError(
            ErrorCode.INVALID_MODEL_SPEC,
            f"{spec} holds {found}; a vision spec must be package:efficientnet-lite0 or a transformers "
            f"model of type {', '.join(SUPPORTED_MODEL_TYPES)} (config.json model_type)",
        )
    return _ClipBackend(spec, device, dtype)


def _local_model_type(path: Path) -> str | None:
    """config.json's model_type, read without transformers (cheap, and it cannot reach the network)."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    return model_type if isinstance(model_type, str) else None


def _pretrained_kwargs(spec: ModelSpec) -> tuple[str, dict[str, Any]]:
    """from_pretrained's first argument and options: never touch the network for a local dir."""
    if spec.scheme == "hf":
        return spec.name, {"revision": spec.revision}
    return str(Path(spec.name).expanduser()), {"local_files_only": True}


def _hub_model_type(spec: ModelSpec) -> str | None:
    from transformers import AutoConfig

    name, kwargs = _pretrained_kwargs(spec)
    try:
        return str(AutoConfig.from_pretrained(name, **kwargs).model_type)
    except (OSError, ValueError) as exc:
        raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"cannot load {spec}: {exc}") from exc


def _fit(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, size, size) float32 0..255: shorter side scaled to size, centre-cropped.

    The same geometry as the frame sampler's default "crop" mode, so pipeline frames pass untouched.
    """
    x = pixels.permute(0, 3, 1, 2).float()
    height, width = x.shape[-2:]
    if (height, width) == (size, size):
        return x
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return x[:, :, top : top + size, left : left + size].clamp(0.0, 255.0)


class _LiteBackend:
    """EfficientNet-Lite from the verified package file; `arch` is its name in efficientnet_lite_pytorch."""

    joint_space = False

    def __init__(self, arch: str, weights: Path, device: str, dtype: torch.dtype) -> None:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise MediaError(
                ErrorCode.MODEL_UNAVAILABLE,
                "the EfficientNet-Lite architecture package is not installed: "
                "pip install efficientnet-lite-pytorch==0.1.0",
            ) from exc
        # Build and load ourselves rather than via from_pretrained: that one downloads when weights_path
        # is not a str, prints, and calls torch.load without weights_only.
        model = EfficientNet.from_name(arch)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
        self.model = model.eval().to(device=device, dtype=dtype)
        self.image_size = int(EfficientNet.get_image_size(arch))  # 224 for lite0
        self.dim = int(model._fc.in_features)  # 1280
        self.class_names = tuple(name for name, _ in imagenet_classes())
        self.dtype = dtype

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = ((_fit(pixels, self.image_size) - LITE_MEAN) / LITE_STD).to(self.dtype)
        # EfficientNet.forward minus its last step, so one pass gives both the features and the logits.
        pooled = self.model._avg_pooling(self.model.extract_features(x)).flatten(1)
        logits = self.model._fc(pooled)  # dropout, skipped here, is the identity in eval mode
        return pooled, logits.float().softmax(dim=-1)


class _ClipBackend:
    """A transformers CLIP model: image and text towers projected into one space."""

    joint_space = True
    class_names: tuple[str, ...] = ()

    def __init__(self, spec: ModelSpec, device: str, dtype: torch.dtype) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        name, kwargs = _pretrained_kwargs(spec)
        try:
            model = CLIPModel.from_pretrained(name, **kwargs)
            # The PIL backend: torchvision (the other one) does not load beside this project's torch.
            self.processor = AutoImageProcessor.from_pretrained(name, backend="pil", **kwargs)
            self.tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        except (OSError, ValueError) as exc:
            raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"cannot load {spec}: {exc}") from exc
        self.model = model.eval().to(device=device, dtype=dtype)
        config: Any = model.config  # transformers types its sub-configs as optional dicts
        self.dim = int(config.projection_dim)
        self.max_text_tokens = int(config.text_config.max_position_embeddings)
        self.device, self.dtype = device, dtype

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The processor (resize, crop, CLIP mean/std) works on host arrays; frames are small, so the
        # round trip costs little beside the ViT.
        inputs = self.processor(images=list(pixels.cpu().numpy()), return_tensors="pt")
        values = inputs["pixel_values"].to(device=self.device, dtype=self.dtype)
        # The towers and projections directly: get_image_features' return type differs across versions.
        pooled = self.model.vision_model(pixel_values=values).pooler_output
        return F.normalize(self.model.visual_projection(pooled).float(), dim=-1), None

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int) -> F32:
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_text_tokens,
                return_tensors="pt",
            ).to(self.device)
            pooled = self.model.text_model(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            ).pooler_output
            emb = F.normalize(self.model.text_projection(pooled).float(), dim=-1)
            out.append(emb.cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)
