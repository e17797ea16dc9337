"""The multilingual text encoders load from their packages (weights sha256-verified) and read meaning in
several languages: what lets a Spanish, German or Mandarin description reach an English label."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ErrorCode, MediaError
from models.bundled import BUNDLED_MODELS, locate_package_file, verify_file_in_place
from models.text import TextEncoder

SPECS = ("package:multilingual-e5-small", "package:use-multilingual-v3")
LABELS = ["animals", "food", "vehicles", "clothes", "tools", "sports"]
# (text, the label it is about): English and its translations, as Whisper would write them.
TEXTS = (
    ("A parrot on a branch.", "animals"),
    ("Un loro en una rama.", "animals"),
    ("Ein Papagei auf einem Ast.", "animals"),
    ("树枝上的一只鹦鹉。", "animals"),
    ("A plate of spaghetti.", "food"),
    ("Un plato de espaguetis.", "food"),
    ("Ein roter Lastwagen.", "vehicles"),
    ("一辆红色的汽车。", "vehicles"),
    ("Ein Fussball.", "sports"),
)


@pytest.fixture(scope="module", params=SPECS)
def encoder(request: pytest.FixtureRequest) -> TextEncoder:
    return TextEncoder(request.param, device="cpu")


def test_translations_reach_the_english_label(encoder: TextEncoder) -> None:
    labels = encoder.encode(LABELS)
    texts = encoder.encode([t for t, _ in TEXTS])
    assert texts.shape == (len(TEXTS), encoder.dim) and texts.dtype == np.float32
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    chosen = [LABELS[i] for i in (texts @ labels.T).argmax(axis=1)]
    wrong = [(t, want, got) for (t, want), got in zip(TEXTS, chosen, strict=True) if want != got]
    assert len(wrong) <= 1, wrong


def test_a_sentence_and_its_translation_are_neighbours(encoder: TextEncoder) -> None:
    english, spanish, german, other = encoder.encode(
        ["The dog is playing in the park.", "El perro juega en el parque.", "Der Hund spielt im Park.",
         "The stock market fell sharply today."]
    )  # fmt: skip
    assert english @ spanish > english @ other and english @ german > english @ other


def test_batches_agree_with_single_texts_and_edge_cases(encoder: TextEncoder) -> None:
    texts = ["short", "a somewhat longer sentence about cooking pasta", ""]
    together = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)
    assert encoder.encode([]).shape == (0, encoder.dim)
    with pytest.raises(TypeError):
        encoder.encode("one string")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["multilingual-e5-small", "use-multilingual-v3", "sentimentai-e5-small"])
def test_weights_are_verified_where_pip_put_them(name: str, tmp_path) -> None:
    for cache_file in BUNDLED_MODELS[name].files:
        (source,) = cache_file.sources
        path = locate_package_file(source)
        verify_file_in_place(path, cache_file.sha256, "reinstall")
        tampered = tmp_path / path.name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        tampered.write_bytes(bytes(data))
        with pytest.raises(MediaError) as info:
            verify_file_in_place(tampered, cache_file.sha256, "reinstall")
        assert info.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH
