"""The fusion head: attention over modality tokens, as a residual on top of the zero-shot priors.

Token layout (N = 5 + T + S, the same for every sample of a batch; padding is masked):

    0 cls | 1 category_prior | 2 sentiment_prior | 3 audio | 4 prosody | 5.. vision (T) | then text (S)

Category scores are dot products of a query made from the fused [CLS] token with the label embeddings, so
any label set works without retraining. The layers that make both residuals are zero-initialised and the
priors are scaled by exactly 1.0, so an untrained head returns the zero-shot answer bit for bit; fine-tuning
can only add to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.types import SENTIMENTS

F32 = npt.NDArray[np.float32]
Modality = Literal["cls", "category_prior", "sentiment_prior", "audio", "prosody", "vision", "text"]
MODALITIES: tuple[Modality, ...] = get_args(Modality)  # token kinds, in token order
FIXED_TOKENS = 5  # cls, category prior, sentiment prior, audio, prosody: always at positions 0-4
ABLATABLE = ("vision", "audio", "text")  # modalities `modality_ablation` masks one at a time


@dataclass(frozen=True)
class FusionConfig:
    """Sizes and hyper-parameters of a `FusionHead`; a checkpoint stores it to rebuild the head."""

    vision_dim: int = 1280  # per-frame embedding (EfficientNet-B0 pooled; a CLIP model: its joint space)
    audio_dim: int = 512  # Whisper base encoder output, mean-pooled over time
    prosody_dim: int = 70  # 6 AudioFeatures scalars + 64 log-mel band means (pipeline.audio_features)
    text_dim: int = 384  # transcript embeddings (MiniLM-class sentence encoder)
    label_dim: int = 384  # label embeddings: labels are embedded by the text encoder
    num_sentiments: int = 3  # len(SENTIMENTS); fixed, the order is models.types.SENTIMENTS
    d_model: int = 256  # token width inside the transformer
    heads: int = 4  # attention heads; d_model must be divisible by it
    layers: int = 2  # transformer layers; the last one only updates [CLS] (nothing else is read)
    ff_mult: int = 4  # feed-forward hidden width = ff_mult * d_model
    dropout: float = 0.1  # attention and feed-forward dropout, training only
    max_time_s: float = 600.0  # longest time-encoding period; later timestamps are clamped to it
    min_time_period_s: float = 1.0  # shortest period: frames one second apart still get distinct codes
    prior_weight_init: float = 1.0  # initial multiplier of the log-priors; 1.0 keeps untrained == zero-shot

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0 or (f.name != "dropout" and getattr(self, f.name) == 0):
                raise ValueError(f"FusionConfig.{f.name} must be positive, got {getattr(self, f.name)}")
        if self.d_model % self.heads or self.d_model % 2:
            raise ValueError(f"d_model={self.d_model} must be even and divisible by heads={self.heads}")
        if self.num_sentiments != len(SENTIMENTS):
            raise ValueError(f"num_sentiments must be {len(SENTIMENTS)} (models.types.SENTIMENTS)")


@dataclass(frozen=True)
class FusionInputs:
    """One batch of head inputs, batch-first torch tensors. Masks are bool, True = present.

    T (frames) and S (text tokens) may be 0; padding is whatever `collate` put there and is never read.
    The label set (L labels) is shared by the batch.
    """

    vision: Tensor  # (B, T, Dv) per-frame embeddings
    vision_times: Tensor  # (B, T) frame timestamps, seconds from the start
    vision_mask: Tensor  # (B, T) bool
    audio: Tensor  # (B, Da) Whisper encoder embedding
    audio_mask: Tensor  # (B,) bool; prosody counts as present exactly when audio does
    prosody: Tensor  # (B, Dp) raw prosody (Hz, bpm, dB...): the head compresses it
    text: Tensor  # (B, S, Dt) index 0 = whole transcript, 1.. = segments
    text_times: Tensor  # (B, S) segment start seconds (ignored at index 0)
    text_mask: Tensor  # (B, S) bool
    category_prior: Tensor  # (B, L) zero-shot log-probabilities over the label set
    sentiment_prior: Tensor  # (B, 3) zero-shot log-probabilities, SENTIMENTS order
    label_embeddings: Tensor  # (L, Dl) L2-normalised

    def __post_init__(self) -> None:
        b, t, s = self.vision.shape[0], self.vision.shape[1], self.text.shape[1]
        n_labels = self.label_embeddings.shape[0]
        expected = {"vision_times": (b, t), "vision_mask": (b, t), "audio_mask": (b,), "text_times": (b, s)}
        expected |= {"text_mask": (b, s), "category_prior": (b, n_labels), "sentiment_prior": (b, 3)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                found = tuple(getattr(self, name).shape)
                raise ValueError(f"FusionInputs.{name} has shape {found}, expected {shape}")
        if not self.audio.shape[0] == self.prosody.shape[0] == self.text.shape[0] == b or n_labels == 0:
            raise ValueError("FusionInputs: batch sizes differ between modalities, or no labels")

    @property
    def batch_size(self) -> int:
        return int(self.vision.shape[0])

    def to(self, device: torch.device | str) -> FusionInputs:
        """The same batch on `device`."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def without(self, modality: str) -> FusionInputs:
        """The same batch with `modality` ("vision", "audio" or "text") masked out everywhere."""
        mask_name = {"vision": "vision_mask", "audio": "audio_mask", "text": "text_mask"}[modality]
        return replace(self, **{mask_name: torch.zeros_like(getattr(self, mask_name))})

    @classmethod
    def from_numpy(
        cls,
        config: FusionConfig,
        *,
        category_prior: F32,
        sentiment_prior: F32,
        label_embeddings: F32,
        vision: F32 | None = None,
        vision_times: F32 | None = None,
        audio: F32 | None = None,
        prosody: F32 | None = None,
        text: F32 | None = None,
        text_times: F32 | None = None,
    ) -> FusionInputs:
        """A batch of one from one video's arrays; a missing modality is None (or has 0 rows).

        vision (T, Dv) with vision_times (T,); audio (Da,); prosody (Dp,) (zeros when None); text (S, Dt)
        with text_times (S,) (zeros when None); category_prior (L,); sentiment_prior (3,); labels (L, Dl).
        """
        vision = np.zeros((0, config.vision_dim), np.float32) if vision is None else vision
        text = np.zeros((0, config.text_dim), np.float32) if text is None else text
        if vision_times is None and len(vision):
            raise ValueError("FusionInputs.from_numpy: vision needs vision_times")
        vision_times = np.zeros((0,), np.float32) if vision_times is None else vision_times
        text_times = np.zeros((len(text),), np.float32) if text_times is None else text_times
        arrays = {
            "vision": vision, "vision_times": vision_times, "text": text, "text_times": text_times,
            "audio": np.zeros((config.audio_dim,), np.float32) if audio is None else audio,
            "prosody": np.zeros((config.prosody_dim,), np.float32) if prosody is None else prosody,
            "category_prior": category_prior, "sentiment_prior": sentiment_prior,
        }  # fmt: skip
        batch = {name: torch.as_tensor(np.asarray(a, dtype=np.float32))[None] for name, a in arrays.items()}
        return cls(
            **batch,
            vision_mask=torch.ones((1, len(vision)), dtype=torch.bool),
            text_mask=torch.ones((1, len(text)), dtype=torch.bool),
            audio_mask=torch.tensor([audio is not None]),
            label_embeddings=torch.as_tensor(np.asarray(label_embeddings, dtype=np.float32)),
        )


def _pad(tensors: list[Tensor], length: int) -> Tensor:
    """Concatenate (B_i, T_i, ...) tensors along the batch, zero-padding dim 1 to `length`."""
    padded = [F.pad(t, (0, 0) * (t.dim() - 2) + (0, length - t.shape[1])) for t in tensors]
    return torch.cat(padded, dim=0)


def collate(items: list[FusionInputs]) -> FusionInputs:
    """One batch from several (each usually a batch of one); T and S are padded, the padding masked.

    Raises ValueError unless every item uses the same label embeddings: the label set is per batch.
    """
    if not items:
        raise ValueError("collate: no inputs")
    labels = items[0].label_embeddings
    if any(not torch.equal(item.label_embeddings, labels) for item in items[1:]):
        raise ValueError("collate: every item of a batch must use the same label embeddings")
    t = max(int(item.vision.shape[1]) for item in items)
    s = max(int(item.text.shape[1]) for item in items)
    lengths = {"vision": t, "vision_times": t, "vision_mask": t, "text": s, "text_times": s, "text_mask": s}
    values: dict[str, Tensor] = {"label_embeddings": labels}
    for name in (f.name for f in fields(FusionInputs) if f.name != "label_embeddings"):
        parts = [getattr(item, name) for item in items]
        values[name] = _pad(parts, lengths[name]) if name in lengths else torch.cat(parts, dim=0)
    return FusionInputs(**values)


@dataclass(frozen=True)
class TokenKind:
    """Which input a token comes from: `index` is the frame (vision) or text row (text; 0 = whole)."""

    modality: Modality
    index: int


@dataclass(frozen=True)
class TokenEvidence:
    """One present token of one sample and the share of [CLS] attention it got in the last layer."""

    modality: Modality
    index: int
    time_s: float | None  # frame time or segment start; None for untimed tokens
    attention: float


@dataclass(frozen=True)
class FusionOutput:
    """What the head returns for a batch of B samples and L labels (N tokens)."""

    category_logits: Tensor  # (B, L) prior log-probabilities * prior scale + residual
    sentiment_logits: Tensor  # (B, 3) same, SENTIMENTS order
    attention: Tensor  # (B, N) last-layer [CLS] attention, mean over heads; 0 on masked tokens
    token_kinds: tuple[TokenKind, ...]  # N entries, shared by the batch
    token_times: Tensor  # (B, N) seconds; NaN for untimed or masked tokens
    token_mask: Tensor  # (B, N) bool, True = present

    def evidence(self, sample: int) -> list[TokenEvidence]:
        """Present tokens of batch row `sample`, most attended first."""
        attn = self.attention[sample].detach().float().cpu().tolist()
        times = self.token_times[sample].detach().float().cpu().tolist()
        mask = self.token_mask[sample].cpu().tolist()
        out = [
            TokenEvidence(kind.modality, kind.index, None if math.isnan(time) else time, weight)
            for kind, weight, time, present in zip(self.token_kinds, attn, times, mask, strict=True)
            if present
        ]
        return sorted(out, key=lambda e: -e.attention)


def _time_frequencies(config: FusionConfig) -> Tensor:
    """(d_model/2,) angular frequencies, periods geometric from min_time_period_s to max_time_s."""
    low, high = math.log10(config.min_time_period_s), math.log10(config.max_time_s)
    periods = torch.logspace(low, high, config.d_model // 2, dtype=torch.float64)
    return (2 * math.pi / periods).float()


def _projection(in_dim: int, d_model: int) -> nn.Sequential:
    # LayerNorm after the projection: encoders disagree wildly in scale (CLIP unit vectors vs raw
    # EfficientNet activations), so every token reaches the transformer at a comparable size.
    return nn.Sequential(nn.Linear(in_dim, d_model), nn.LayerNorm(d_model))


def _compress(x: Tensor) -> Tensor:
    """Signed log1p: brings Hz, bpm, dB and fractions into a similar range before the projection."""
    return torch.sign(x) * torch.log1p(x.abs())


class _Block(nn.Module):
    """Pre-norm transformer layer that can return its (head-averaged) attention weights."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        d = config.d_model
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(
            nn.Linear(d, config.ff_mult * d),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ff_mult * d, d),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, padding: Tensor, cls_only: bool) -> tuple[Tensor, Tensor | None]:
        """x (B, N, d), padding (B, N) True = ignore -> (B, N or 1, d) and, if cls_only, (B, N) weights."""
        h = self.norm1(x)
        query = h[:, :1] if cls_only else h
        out, weights = self.attn(
            query, h, h, key_padding_mask=padding, need_weights=cls_only, average_attn_weights=True
        )
        x = (x[:, :1] if cls_only else x) + self.drop(out)
        x = x + self.drop(self.ff(self.norm2(x)))
        return x, (weights[:, 0] if weights is not None else None)


class FusionHead(nn.Module):
    """Fuses vision, audio, prosody, transcript and prior tokens into category and sentiment logits."""

    time_freqs: Tensor  # (d_model/2,) buffer, derived from the config (not saved)

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.vision_in = _projection(config.vision_dim, d)
        self.audio_in = _projection(config.audio_dim, d)
        self.prosody_in = _projection(config.prosody_dim, d)
        self.text_in = _projection(config.text_dim, d)
        # The category prior as a label-agnostic token: the prior-weighted mean label embedding plus the
        # prior's confidence (max probability, normalised entropy), whatever the number of labels.
        self.category_prior_in = _projection(config.label_dim + 2, d)
        self.sentiment_prior_in = _projection(config.num_sentiments, d)
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.modality = nn.Parameter(torch.randn(len(MODALITIES), d) * 0.02)
        self.whole_text = nn.Parameter(torch.randn(d) * 0.02)  # marks text row 0, which has no time
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        # Zero-initialised outputs: both residuals are exactly 0 until training moves them.
        self.category_query = nn.Linear(d, config.label_dim)
        self.sentiment_out = nn.Linear(d, config.num_sentiments)
        for layer in (self.category_query, self.sentiment_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # log of the prior multipliers: exp(0) == 1 exactly, and weight decay pulls them back to the init.
        self.log_category_prior_scale = nn.Parameter(torch.zeros(()))
        self.log_sentiment_prior_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("time_freqs", _time_frequencies(config), persistent=False)

    def forward(self, inputs: FusionInputs) -> FusionOutput:
        """Logits for `inputs` (B samples, L labels); see `FusionOutput` for shapes."""
        self._check_dims(inputs)
        mask, times, text_timed, kinds = _layout(inputs)
        x, padding = self._tokens(inputs, text_timed), ~mask
        attention = x.new_zeros(mask.shape)
        for i, block in enumerate(self.blocks):
            x, weights = block(x, padding, cls_only=i == len(self.blocks) - 1)
            attention = weights if weights is not None else attention
        cls = self.norm(x[:, 0])
        # CLIP-style scoring: a query in label space against whatever labels this batch uses.
        residual = self.category_query(cls) @ inputs.label_embeddings.T
        prior_init = self.config.prior_weight_init
        category = inputs.category_prior * (prior_init * self.log_category_prior_scale.exp()) + residual
        sentiment = inputs.sentiment_prior * (prior_init * self.log_sentiment_prior_scale.exp())
        return FusionOutput(
            category_logits=category,
            sentiment_logits=sentiment + self.sentiment_out(cls),
            attention=attention,
            token_kinds=kinds,
            token_times=times,
            token_mask=mask,
        )

    def _check_dims(self, inputs: FusionInputs) -> None:
        c = self.config
        dims = {
            "vision": (inputs.vision.shape[-1], c.vision_dim), "audio": (inputs.audio.shape[-1], c.audio_dim),
            "prosody": (inputs.prosody.shape[-1], c.prosody_dim), "text": (inputs.text.shape[-1], c.text_dim),
            "label_embeddings": (inputs.label_embeddings.shape[-1], c.label_dim),
        }  # fmt: skip
        for name, (got, want) in dims.items():
            if got != want:
                raise ValueError(f"fusion head expects {want}-d {name} features, got {got}-d")

    def _time_code(self, seconds: Tensor) -> Tensor:
        """(B, K) seconds -> (B, K, d_model) sinusoidal code; no parameters, any length."""
        angles = seconds.clamp(0.0, self.config.max_time_s)[..., None] * self.time_freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def _tokens(self, inputs: FusionInputs, text_timed: Tensor) -> Tensor:
        """-> (B, N, d_model) tokens in the layout of the module docstring."""
        emb = dict(zip(MODALITIES, self.modality, strict=True))
        # Masked rows are zeroed before anything reads them: padding (even NaN) cannot leak in.
        v_mask, t_mask, a_mask = (
            inputs.vision_mask[..., None],
            inputs.text_mask[..., None],
            inputs.audio_mask[:, None],
        )
        vision, text = torch.where(v_mask, inputs.vision, 0.0), torch.where(t_mask, inputs.text, 0.0)
        vision_times = torch.where(inputs.vision_mask, inputs.vision_times, 0.0)
        text_times = torch.where(text_timed, inputs.text_times, 0.0)
        audio, prosody = torch.where(a_mask, inputs.audio, 0.0), torch.where(a_mask, inputs.prosody, 0.0)
        fixed = [
            (self.cls + emb["cls"]).expand(inputs.batch_size, -1),
            self.category_prior_in(_prior_summary(inputs)) + emb["category_prior"],
            self.sentiment_prior_in(inputs.sentiment_prior.softmax(-1)) + emb["sentiment_prior"],
            self.audio_in(audio) + emb["audio"],
            self.prosody_in(_compress(prosody)) + emb["prosody"],
        ]
        whole = (torch.arange(text.shape[1], device=text.device) == 0)[None, :, None] * self.whole_text
        text_code = text_timed[..., None] * self._time_code(text_times)
        vision_tokens = self.vision_in(vision) + emb["vision"] + self._time_code(vision_times)
        text_tokens = self.text_in(text) + emb["text"] + text_code + whole
        return torch.cat([torch.stack(fixed, dim=1), vision_tokens, text_tokens], dim=1)


def _layout(inputs: FusionInputs) -> tuple[Tensor, Tensor, Tensor, tuple[TokenKind, ...]]:
    """-> mask (B, N), times (B, N) (NaN = untimed or masked), timed text (B, S), token kinds (N,)."""
    b, t, s = inputs.batch_size, inputs.vision.shape[1], inputs.text.shape[1]
    text_timed = inputs.text_mask & (torch.arange(s, device=inputs.text.device) > 0)  # row 0: whole text
    audio = inputs.audio_mask[:, None]
    always = torch.ones((b, FIXED_TOKENS - 2), dtype=torch.bool, device=audio.device)
    mask = torch.cat([always, audio, audio, inputs.vision_mask, inputs.text_mask], dim=1)
    untimed = torch.full((b, FIXED_TOKENS), math.nan, device=audio.device)
    vision_times = inputs.vision_times.masked_fill(~inputs.vision_mask, math.nan)
    times = torch.cat([untimed, vision_times, inputs.text_times.masked_fill(~text_timed, math.nan)], dim=1)
    kinds = (
        *(TokenKind(m, 0) for m in MODALITIES[:FIXED_TOKENS]),
        *(TokenKind("vision", i) for i in range(t)),
        *(TokenKind("text", i) for i in range(s)),
    )
    return mask, times, text_timed, kinds


def _prior_summary(inputs: FusionInputs) -> Tensor:
    """(B, Dl + 2): prior-weighted mean label embedding, max probability, entropy / log L."""
    probs = inputs.category_prior.softmax(-1)
    n_labels = probs.shape[-1]
    entropy = torch.special.entr(probs).sum(-1) / (math.log(n_labels) if n_labels > 1 else 1.0)
    mean_label = probs @ inputs.label_embeddings
    return torch.cat([mean_label, probs.amax(-1, keepdim=True), entropy[:, None]], dim=-1)


@dataclass(frozen=True)
class HeadProbs:
    """Probabilities from one forward pass."""

    category: Tensor  # (B, L)
    sentiment: Tensor  # (B, 3)


@torch.no_grad()
def modality_ablation(head: FusionHead, inputs: FusionInputs) -> dict[str, HeadProbs]:
    """Probabilities with everything ("full") and with each of vision, audio, text masked ("vision", ...).

    The difference from "full" is that modality's contribution through the head's residual. The priors
    are inputs, not recomputed, so an untrained head shows no difference: its answer is the prior's.
    Runs in eval mode (no dropout) and restores the head's previous mode.
    """
    was_training = head.training
    head.eval()
    try:
        results: dict[str, HeadProbs] = {}
        for name, batch in [("full", inputs), *((m, inputs.without(m)) for m in ABLATABLE)]:
            out = head(batch)
            results[name] = HeadProbs(out.category_logits.softmax(-1), out.sentiment_logits.softmax(-1))
        return results
    finally:
        head.train(was_training)
