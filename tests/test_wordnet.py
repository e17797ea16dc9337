"""WordNet tables (models/data/wordnet, read through the installed package) and their use by the bridge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.fusion import FusionConfig, FusionHead
from models.predictor import Predictor
from models.vision import imagenet_classes as imagenet_name_rows
from models.wordnet import (
    GENERIC_HYPERNYMS,
    expand_text,
    imagenet_class_terms,
    imagenet_class_texts,
    imagenet_classes,
    noun_domain,
    noun_hypernyms,
)
from models.zero_shot import ClassHierarchy, hierarchy_class_scores, imagenet_bridge_scores
from pipeline.config import AnalyzerConfig

IMAGENET_NAMES = tuple(name for name, _ in imagenet_name_rows())


def _class_text(name: str) -> str:
    (text,) = [t for n, t in zip(IMAGENET_NAMES, imagenet_class_texts("path"), strict=True) if n == name]
    return text


def test_imagenet_table_matches_the_classifier_classes() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000 and len({c.wnid for c in classes}) == 1000
    assert imagenet_class_texts("bare") == IMAGENET_NAMES
    # Same synonyms as imagenet_classes.txt, class by class (the two files come from different sources).
    assert all(
        ", ".join(c.lemmas) == lemmas for c, (_, lemmas) in zip(classes, imagenet_name_rows(), strict=True)
    )
    assert all(c.path[-1] == "entity" for c in classes)
    texts = imagenet_class_texts("path")
    assert all(t.startswith(n) for t, n in zip(texts, IMAGENET_NAMES, strict=True))


def test_class_texts_say_what_the_class_is() -> None:
    toucan = _class_text("toucan")
    assert "bird" in toucan and "animal" in toucan
    assert "bird" in _class_text("hen")
    pizza = _class_text("pizza")
    assert "food" in pizza and "dish" in pizza
    # The two "crane" classes are told apart: the bird and the machine.
    texts = zip(IMAGENET_NAMES, imagenet_class_texts(), strict=True)
    crane_bird, crane_machine = (t for n, t in texts if n == "crane")
    assert "bird" in crane_bird and "bird" not in crane_machine and "device" in crane_machine
    # Generic hypernyms ("entity", "object", "whole") are left out of the text.
    assert not any(f", {g}," in f"{t}," for t in imagenet_class_texts() for g in GENERIC_HYPERNYMS)


def test_noun_hypernyms_of_common_nouns() -> None:
    assert {"hat", "clothing"} <= set(noun_hypernyms("fedora"))
    assert "tool" in noun_hypernyms("wrench")
    assert "bird" in noun_hypernyms("hen")
    assert "food" in noun_hypernyms("pizza")
    assert noun_domain("fedora") == "artifact" and noun_domain("toucan") == "animal"


def test_plurals_and_case() -> None:
    goose = noun_hypernyms("goose")
    assert "bird" in goose
    assert noun_hypernyms("geese") == goose == noun_hypernyms("Geese") == noun_hypernyms("GOOSE")
    assert noun_hypernyms("wrenches") == noun_hypernyms("wrench")
    assert noun_hypernyms("boxes") == noun_hypernyms("box") != ()
    assert noun_hypernyms("puppies") == noun_hypernyms("puppy") != ()
    assert noun_hypernyms("dog's") == noun_hypernyms("dog") != ()


def test_unknown_and_function_words_give_nothing() -> None:
    for word in ("xqzvbn", "", "the", "it", "I", "a"):
        assert noun_hypernyms(word) == ()
    assert noun_domain("xqzvbn") == ""


def test_expand_text_appends_what_nouns_are() -> None:
    out = expand_text("A green fedora.")
    assert out.startswith("A green fedora. (fedora: ")
    assert "hat" in out and "clothing" in out and "artifact" in out
    assert "green:" not in out  # mostly an adjective: not expanded
    assert not any(f" {g}," in out or f" {g})" in out for g in ("entity", "object", "whole"))
    assert "tool" in expand_text("An adjustable wrench.")
    # Each noun at most max_terms hypernyms; a repeated noun once; no noun, no change.
    two = expand_text("Two geese and a goose.", max_terms=2)
    assert two.count("(geese:") == 1 and "(goose:" not in two
    assert two.split("(geese: ")[1].split(";")[0].count(",") == 1
    assert expand_text("It is what it is.") == "It is what it is."


def test_expand_text_matches_two_word_nouns() -> None:
    out = expand_text("We had ice cream.")
    assert "(ice cream: " in out and "dessert" in out


class _RecordingText:
    """A text encoder that records what it is asked to embed (one 4-d vector per text)."""

    spec = "fake:text"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rng = np.random.default_rng(len(self.calls))
        return rng.standard_normal((len(texts), self.dim)).astype(np.float32)


class _Classifier:
    spec = "fake:vision"
    dim = 8
    joint_space = False

    def __init__(self, class_names: tuple[str, ...]) -> None:
        self.class_names = class_names

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("not a joint-space model")


def _predictor(class_names: tuple[str, ...], text: _RecordingText, cache_dir: Path) -> Predictor:
    head = FusionHead(FusionConfig(vision_dim=8, audio_dim=4, text_dim=4, label_dim=4, d_model=8, heads=2))
    return Predictor(
        head, name="t", fine_tuned=False, vision=_Classifier(class_names), text=text, cache_dir=cache_dir
    )


def test_class_embeddings_embed_the_wordnet_path_texts(tmp_path: Path) -> None:
    text = _RecordingText()
    embeddings = _predictor(IMAGENET_NAMES, text, tmp_path).class_embeddings()
    assert text.calls == [list(imagenet_class_texts("path"))] and embeddings.shape == (1000, 4)
    # Cached on disk: a second predictor reads the file instead of embedding again.
    again = _RecordingText()
    assert np.array_equal(_predictor(IMAGENET_NAMES, again, tmp_path).class_embeddings(), embeddings)
    assert again.calls == []


def test_other_class_lists_are_embedded_as_bare_names(tmp_path: Path) -> None:
    text = _RecordingText()
    names = ("cat", "dog", "toucan")
    _predictor(names, text, tmp_path).class_embeddings()
    assert text.calls == [list(names)]
    # A class list that differs from ImageNet's in one name is not ImageNet's either.
    text = _RecordingText()
    almost = ("kitten", *IMAGENET_NAMES[1:])
    _predictor(almost, text, tmp_path).class_embeddings()
    assert text.calls == [list(almost)]
    assert len(list(tmp_path.glob("class-embeddings-*.npy"))) == 2


# --- the hierarchy bridge (models/zero_shot.py) ------------------------------------------------------


def test_class_terms_are_the_name_then_its_informative_hypernyms() -> None:
    terms = dict(zip(IMAGENET_NAMES, imagenet_class_terms(), strict=True))
    assert terms["toucan"][0] == "toucan" and "bird" in terms["toucan"] and "animal" in terms["toucan"]
    assert terms["toucan"].index("bird") < terms["toucan"].index("animal")  # nearest first
    assert not any(t in GENERIC_HYPERNYMS for ts in terms.values() for t in ts)


def test_a_class_scores_a_label_by_its_best_term() -> None:
    hierarchy = ClassHierarchy.from_class_terms([("toucan", "bird", "animal"), ("cereal", "food")])
    assert hierarchy.terms == ("toucan", "bird", "animal", "cereal", "food")
    assert hierarchy.members == ((0, 1, 2), (3, 4))
    # Term-label cosines for labels (animals, food): the toucan's name leans to food, its "animal" decides.
    term_sims = np.array([[0.2, 0.5], [0.6, 0.1], [0.9, 0.1], [0.1, 0.7], [0.1, 0.95]], dtype=np.float32)
    scores = hierarchy_class_scores(term_sims, hierarchy)
    assert np.allclose(scores, [[0.9, 0.5], [0.1, 0.95]])
    frames = np.array([[0.75, 0.25], [0.0, 1.0]], dtype=np.float32)  # (T, C) class probabilities
    assert np.allclose(imagenet_bridge_scores(frames, scores), [[0.7, 0.6125], [0.1, 0.95]])


def test_the_real_bridge_puts_imagenet_classes_under_their_categories(tmp_path: Path) -> None:
    from models.labels import custom_labels
    from models.text import TextEncoder

    predictor = _predictor(IMAGENET_NAMES, _RecordingText(), tmp_path)
    predictor.bridge = TextEncoder(AnalyzerConfig().bridge_model, device="cpu")
    labels = custom_labels(["animals", "food", "plants", "vehicles", "clothes", "tools", "music"])
    scores = predictor.class_label_scores(labels)  # (1000, L)
    expected = {
        "toucan": "animals", "hen": "animals", "pizza": "food", "daisy": "plants", "cab": "vehicles",
        "cowboy hat": "clothes", "hammer": "tools", "acoustic guitar": "music", "fly": "animals",
    }  # fmt: skip
    chosen = {name: labels.names[int(scores[IMAGENET_NAMES.index(name)].argmax())] for name in expected}
    assert chosen == expected
