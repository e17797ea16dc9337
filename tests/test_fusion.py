"""Fusion head: shapes, masking, zero-shot equivalence when untrained, learning, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import ErrorCode, MediaError
from models import checkpoint
from models.checkpoint import load_head, save_head
from models.fusion import FusionConfig, FusionHead, FusionInputs, collate, modality_ablation

# Small sizes keep the suite fast; the default config is used where realism matters (zero-init check).
SMALL = FusionConfig(
    vision_dim=32, audio_dim=16, prosody_dim=8, text_dim=24, label_dim=24, d_model=32, heads=4, layers=2
)
SPECS = {
    "vision": "local:/m/vision",
    "audio": "package:whisper-base",
    "text": "local:/m/text",
    "label": "local:/m/text",
}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=-1, keepdims=True))).astype(np.float32)


def _labels(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    labels = rng.normal(size=(n, dim)).astype(np.float32)
    return labels / np.linalg.norm(labels, axis=1, keepdims=True)


def _sample(
    rng: np.random.Generator,
    config: FusionConfig,
    labels: np.ndarray,
    frames: int = 3,
    segments: int = 2,
    audio: bool = True,
) -> FusionInputs:
    """A batch of one with random features; `segments` counts text rows (0 = no transcript)."""
    return FusionInputs.from_numpy(
        config,
        category_prior=_log_softmax(rng.normal(size=len(labels))),
        sentiment_prior=_log_softmax(rng.normal(size=3)),
        label_embeddings=labels,
        vision=rng.normal(size=(frames, config.vision_dim)).astype(np.float32),
        vision_times=np.arange(frames, dtype=np.float32) * 2.0,
        audio=rng.normal(size=config.audio_dim).astype(np.float32) if audio else None,
        prosody=(rng.normal(size=config.prosody_dim) * 100).astype(np.float32) if audio else None,
        text=rng.normal(size=(segments, config.text_dim)).astype(np.float32),
        text_times=np.arange(segments, dtype=np.float32) * 5.0,
    )


def _perturbed_head(config: FusionConfig = SMALL, seed: int = 0) -> FusionHead:
    """A head whose zero-initialised outputs are randomised, as after training: residuals are non-zero."""
    torch.manual_seed(seed)
    head = FusionHead(config)
    with torch.no_grad():
        head.category_query.weight.normal_(0.0, 0.5)
        head.sentiment_out.weight.normal_(0.0, 0.5)
    return head.eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny tensors: extra intra-op threads only contend with each other (20x slower on a busy 2-core box).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def batch() -> FusionInputs:
    rng = np.random.default_rng(0)
    labels = _labels(rng, 6, SMALL.label_dim)
    return collate([_sample(rng, SMALL, labels, 3, 2), _sample(rng, SMALL, labels, 5, 0, audio=False)])


def test_output_shapes_and_attention_with_padding(batch: FusionInputs) -> None:
    out = _perturbed_head()(batch)
    n_tokens = 5 + 5 + 2
    assert out.category_logits.shape == (2, 6) and out.sentiment_logits.shape == (2, 3)
    assert out.attention.shape == (2, n_tokens) and len(out.token_kinds) == n_tokens
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2))
    assert torch.all(out.attention[~out.token_mask] == 0)
    assert [k.modality for k in out.token_kinds[:6]] == [
        "cls", "category_prior", "sentiment_prior", "audio", "prosody", "vision"
    ]  # fmt: skip
    evidence = out.evidence(1)  # 5 frames, no audio, no text: the 3 fixed tokens + 5 frames
    assert len(evidence) == 8 and {e.modality for e in evidence} == {
        "cls",
        "category_prior",
        "sentiment_prior",
        "vision",
    }
    assert sorted(e.time_s for e in evidence if e.modality == "vision") == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert evidence == sorted(evidence, key=lambda e: -e.attention)


def test_masked_values_do_not_change_outputs(batch: FusionInputs) -> None:
    head = _perturbed_head()
    before = head(batch)
    garbage = dataclasses.replace(
        batch,
        vision=torch.where(batch.vision_mask[..., None], batch.vision, torch.nan),
        vision_times=torch.where(batch.vision_mask, batch.vision_times, 1e6),
        text=torch.where(batch.text_mask[..., None], batch.text, 1e4),
        audio=torch.where(batch.audio_mask[:, None], batch.audio, torch.nan),
        prosody=torch.where(batch.audio_mask[:, None], batch.prosody, -7.0),
    )
    after = head(garbage)
    assert torch.equal(before.category_logits, after.category_logits)
    assert torch.equal(before.sentiment_logits, after.sentiment_logits)
    assert torch.equal(before.attention, after.attention)


def test_padding_does_not_change_a_sample() -> None:
    rng = np.random.default_rng(1)
    labels = _labels(rng, 4, SMALL.label_dim)
    short, long = _sample(rng, SMALL, labels, 2, 1), _sample(rng, SMALL, labels, 9, 6)
    head = _perturbed_head()
    alone, padded = head(short), head(collate([short, long]))
    torch.testing.assert_close(alone.category_logits[0], padded.category_logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone.sentiment_logits[0], padded.sentiment_logits[0], atol=1e-5, rtol=1e-5)


def test_a_sample_without_vision_audio_or_text_still_works() -> None:
    rng = np.random.default_rng(2)
    labels = _labels(rng, 5, SMALL.label_dim)
    empty = FusionInputs.from_numpy(
        SMALL,
        category_prior=_log_softmax(rng.normal(size=5)),
        sentiment_prior=_log_softmax(rng.normal(size=3)),
        label_embeddings=labels,
    )
    assert empty.vision.shape == (1, 0, SMALL.vision_dim) and empty.text.shape == (1, 0, SMALL.text_dim)
    out = _perturbed_head()(empty)
    assert out.category_logits.shape == (1, 5) and torch.isfinite(out.category_logits).all()
    assert torch.isfinite(out.sentiment_logits).all()
    assert out.attention.shape == (1, 5) and out.token_mask.tolist() == [[True, True, True, False, False]]


@pytest.mark.parametrize("n_labels", [5, 15])
def test_untrained_head_reproduces_the_zero_shot_answer(n_labels: int) -> None:
    config = FusionConfig()  # the real sizes: equivalence must not depend on them
    rng = np.random.default_rng(n_labels)
    labels = _labels(rng, n_labels, config.label_dim)
    inputs = collate([_sample(rng, config, labels, 7, 3), _sample(rng, config, labels, 0, 0, audio=False)])
    torch.manual_seed(0)
    head = FusionHead(config)  # train mode: dropout must not matter either
    out = head(inputs)
    assert torch.equal(out.category_logits, inputs.category_prior)
    assert torch.equal(out.sentiment_logits, inputs.sentiment_prior)
    torch.testing.assert_close(
        out.category_logits.softmax(-1), inputs.category_prior.softmax(-1), atol=1e-6, rtol=0
    )
    ablated = modality_ablation(head, inputs)
    assert head.training  # the previous mode is restored
    for probs in ablated.values():
        torch.testing.assert_close(probs.category, inputs.category_prior.softmax(-1), atol=1e-6, rtol=0)


def _toy_batch(
    rng: np.random.Generator, protos: np.ndarray, audio_protos: np.ndarray, labels: np.ndarray, size: int
) -> tuple[FusionInputs, torch.Tensor, torch.Tensor]:
    """Category = which vision prototype the frames show; sentiment = which audio prototype is heard."""
    y = rng.integers(0, len(labels), size)
    ys = rng.integers(0, 3, size)
    items = []
    for cat, sent in zip(y, ys, strict=True):
        frames = protos[cat] + rng.normal(scale=0.5, size=(4, protos.shape[1]))
        items.append(
            FusionInputs.from_numpy(
                SMALL,
                category_prior=np.full(len(labels), -np.log(len(labels)), np.float32),
                sentiment_prior=np.full(3, -np.log(3), np.float32),
                label_embeddings=labels,
                vision=frames.astype(np.float32),
                vision_times=np.arange(4, dtype=np.float32),
                audio=(audio_protos[sent] + rng.normal(scale=0.5, size=SMALL.audio_dim)).astype(np.float32),
                prosody=np.zeros(SMALL.prosody_dim, np.float32),
            )
        )
    return collate(items), torch.as_tensor(y), torch.as_tensor(ys)


def test_head_learns_beyond_the_prior() -> None:
    rng = np.random.default_rng(3)
    labels = _labels(rng, 5, SMALL.label_dim)
    protos = rng.normal(size=(5, SMALL.vision_dim))
    audio_protos = rng.normal(size=(3, SMALL.audio_dim))
    torch.manual_seed(0)
    head = FusionHead(SMALL)
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for _ in range(100):
        inputs, y, ys = _toy_batch(rng, protos, audio_protos, labels, 32)
        out = head(inputs)
        loss = torch.nn.functional.cross_entropy(out.category_logits, y)
        loss = loss + torch.nn.functional.cross_entropy(out.sentiment_logits, ys)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    inputs, y, ys = _toy_batch(rng, protos, audio_protos, labels, 200)
    ablation = modality_ablation(head, inputs)
    prior_accuracy = (inputs.category_prior.argmax(-1) == y).float().mean().item()
    accuracy = (ablation["full"].category.argmax(-1) == y).float().mean().item()
    sentiment_accuracy = (ablation["full"].sentiment.argmax(-1) == ys).float().mean().item()
    assert accuracy > max(0.8, prior_accuracy + 0.5), (accuracy, prior_accuracy)
    assert sentiment_accuracy > 0.7, sentiment_accuracy
    # Evidence: hiding vision hurts the category far more than hiding the (absent) transcript.
    full = ablation["full"].category
    vision_shift = (ablation["vision"].category - full).abs().sum(-1).mean()
    text_shift = (ablation["text"].category - full).abs().sum(-1).mean()
    assert vision_shift > 0.5 and text_shift < 1e-5


def test_seeded_heads_are_identical(batch: FusionInputs) -> None:
    first, second = _perturbed_head(seed=7), _perturbed_head(seed=7)
    assert torch.equal(first(batch).category_logits, second(batch).category_logits)
    assert not torch.equal(first(batch).category_logits, _perturbed_head(seed=8)(batch).category_logits)


def _expected(config: FusionConfig = SMALL) -> dict[str, tuple[str, int]]:
    dims = {"vision": config.vision_dim, "audio": config.audio_dim, "text": config.text_dim}
    return {name: (SPECS[name], dim) for name, dim in dims.items()} | {
        "label": (SPECS["label"], config.label_dim)
    }


@pytest.mark.parametrize("safetensors", [True, False])
def test_checkpoint_round_trip(
    batch: FusionInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, safetensors: bool
) -> None:
    monkeypatch.setattr(checkpoint, "_has_safetensors", lambda: safetensors)
    head = _perturbed_head()
    names = [f"label {i}" for i in range(6)]
    save_head(tmp_path, head, SMALL, names, SPECS, metrics={"macro_f1": 0.5}, extra={"epochs": 3})
    assert (tmp_path / ("head.safetensors" if safetensors else "head.pt")).is_file()
    loaded = load_head(tmp_path, _expected())
    assert loaded.config == SMALL and loaded.label_names == tuple(names)
    assert loaded.metrics == {"macro_f1": 0.5} and loaded.extra == {"epochs": 3}
    assert loaded.encoder_specs["vision"].dim == SMALL.vision_dim and not loaded.head.training
    before, after = head(batch), loaded.head(batch)
    assert torch.equal(before.category_logits, after.category_logits)
    assert torch.equal(before.sentiment_logits, after.sentiment_logits)


def test_checkpoint_refuses_a_vision_encoder_of_another_dim(tmp_path: Path) -> None:
    save_head(tmp_path, _perturbed_head(), SMALL, ["a"], SPECS)
    expected = _expected() | {"vision": ("local:/m/clip", 512)}
    with pytest.raises(MediaError) as err:
        load_head(tmp_path, expected)
    assert err.value.code == ErrorCode.INVALID_MODEL_SPEC
    message = err.value.message
    assert (
        "32-d vision" in message
        and "512-d" in message
        and "local:/m/clip" in message
        and "local:/m/vision" in message
    )


def test_checkpoint_warns_on_another_spec_of_the_same_dim(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save_head(tmp_path, _perturbed_head(), SMALL, ["a"], SPECS)
    with caplog.at_level(logging.WARNING, logger="models.checkpoint"):
        load_head(tmp_path, _expected() | {"text": ("local:/m/other-text", SMALL.text_dim)})
    assert "local:/m/other-text" in caplog.text


def test_checkpoint_refuses_tampered_weights_unknown_versions_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        load_head(tmp_path / "nowhere", _expected())
    assert err.value.code == ErrorCode.MODEL_UNAVAILABLE
    save_head(tmp_path, _perturbed_head(), SMALL, ["a"], SPECS)
    meta_path = tmp_path / "head.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(MediaError) as err:
        load_head(tmp_path, _expected())
    assert err.value.code == ErrorCode.INVALID_MODEL_SPEC and "99" in err.value.message
    meta_path.write_text(json.dumps(meta))
    weights = tmp_path / "head.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b" ")
    with pytest.raises(MediaError) as err:
        load_head(tmp_path, _expected())
    assert err.value.code == ErrorCode.MODEL_CHECKSUM_MISMATCH


def test_collate_refuses_mixed_label_sets() -> None:
    rng = np.random.default_rng(4)
    first = _sample(rng, SMALL, _labels(rng, 3, SMALL.label_dim))
    second = _sample(rng, SMALL, _labels(rng, 3, SMALL.label_dim))
    with pytest.raises(ValueError, match="same label embeddings"):
        collate([first, second])
