"""Text sentiment (lexicons + e5-embedding classifier + sentimentai's neural head, stacked) and the audio-tone
prior."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

import numpy as np
import numpy.typing as npt
import pytest

from models.sentiment import EmbedFn, TextSentiment, audio_tone, split_chunks
from models.sentiment_heads import (
    EMBEDDING_DIM,
    LEXICON_FEATURES,
    STACK_INPUTS,
    LinearHead,
    MlpHead,
    SentimentWeights,
    load_neural_head,
    load_weights,
)
from models.types import SENTIMENTS, AudioFeatures
from tests.fresh_interpreter import modules_loaded_by

POSITIVE = (
    "I absolutely love this, it is wonderful",
    "Best purchase I've made this year!",
    "I'm so excited, this is amazing guys!",
)
NEGATIVE = (
    "This was a terrible waste of money, I hate it",
    "What a boring, pointless movie.",
)
NEUTRAL = (
    "The meeting is at three o'clock on Tuesday",
    "Put the flour in a bowl and add two eggs.",
)


# Sentences written for this test, never used to train or choose anything (not from any corpus): the
# shipped heads are scored on them here instead of trusting the accuracy their JSON records.
HELDOUT_SENTENCES = (
    ("The nurse stayed late to help us and was incredibly kind.", "positive"),
    ("Our new neighbours brought cookies, what a lovely surprise.", "positive"),
    ("The garden looks gorgeous after the rain.", "positive"),
    ("I finally passed my driving test and I'm thrilled.", "positive"),
    ("The hotel staff were friendly and the breakfast was excellent.", "positive"),
    ("This little app saves me an hour every day, brilliant.", "positive"),
    ("The concert last night was unforgettable.", "positive"),
    ("My parcel arrived early and perfectly packed, thank you!", "positive"),
    ("The repair shop lost my bike and nobody apologised.", "negative"),
    ("The bus was late again and I missed my interview.", "negative"),
    ("This printer jams constantly, it is useless.", "negative"),
    ("The soup tasted like dishwater and the bread was stale.", "negative"),
    ("I waited two hours on hold and then the line went dead.", "negative"),
    ("The room was filthy and smelled of smoke.", "negative"),
    ("My phone screen cracked the first day, what a disappointment.", "negative"),
    ("The instructions were confusing and the parts did not fit.", "negative"),
    ("The train leaves from platform four at nine fifteen.", "neutral"),
    ("Add the rice to the pot and stir it twice.", "neutral"),
    ("The library closes at six on Saturdays.", "neutral"),
    ("The report has twelve pages and three tables.", "neutral"),
    ("Turn left at the second traffic light.", "neutral"),
    ("The package weighs about two kilograms.", "neutral"),
    ("The meeting moved to room B on the third floor.", "neutral"),
    ("Water boils at one hundred degrees at sea level.", "neutral"),
)


@pytest.fixture(scope="module")
def embed() -> EmbedFn:
    from scripts.train_sentiment import e5_embedder

    return e5_embedder()


@pytest.fixture(scope="module")
def full(embed: EmbedFn) -> TextSentiment:
    return TextSentiment(embed=embed)


def test_importing_loads_nothing_heavy() -> None:
    heavy = ("vaderSentiment", "textblob", "nltk", "torch", "transformers", "sklearn")
    assert modules_loaded_by("import models.sentiment", heavy) == []


def test_weights_load_with_their_record() -> None:
    w = load_weights()
    assert w.embedding.coef.shape == (3, EMBEDDING_DIM)
    assert w.lexicon.coef.shape == (3, len(LEXICON_FEATURES))
    assert w.combined.coef.shape == (3, STACK_INPUTS) == (3, 3 + 3 + len(LEXICON_FEATURES))
    meta = w.metadata
    assert "movieReviewSnippets" in meta["data"]["reserved_for_evaluation"]
    assert "movieReviewSnippets" not in meta["data"]["corpora"]
    assert meta["data"]["train_size"] + meta["data"]["heldout_size"] == sum(meta["data"]["corpora"].values())
    held = meta["heldout"]
    # The stack beats each of its inputs on the held-out 20 %, and the learned heads beat the lexicons.
    assert held["combined"]["accuracy"] > max(held[h]["accuracy"] for h in ("embedding", "neural", "lexicon"))
    assert held["embedding"]["macro_f1"] > held["lexicon"]["macro_f1"]
    # The file is what load_weights parsed, and a JSON round trip changes nothing.
    raw = json.loads(resources.files("models").joinpath("data/sentiment/text_sentiment.json").read_text())
    again = SentimentWeights.from_json(json.loads(json.dumps(w.to_json())))
    assert raw["heads"] == w.to_json()["heads"] == again.to_json()["heads"]


def test_the_neural_head_reads_e5_vectors(embed: EmbedFn) -> None:
    head = load_neural_head()
    assert isinstance(head, MlpHead) and head.dim == EMBEDDING_DIM
    probs = np.exp(head.log_probs(embed(["I absolutely love it, wonderful!", "This is awful, I hate it."])))
    assert probs[0].argmax() == 2 and probs[1].argmax() == 0  # positive, negative
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)  # floored at 1e-4, so nearly 1
    with pytest.raises(ValueError):
        head.log_probs(np.zeros((1, 5)))


def test_weights_for_other_embeddings_are_refused() -> None:
    data = load_weights().to_json()
    with pytest.raises(ValueError, match="embeddings"):
        SentimentWeights.from_json({**data, "embedding_spec": "package:minilm-l6-v2"})


def test_head_rejects_wrong_shapes() -> None:
    head = LinearHead(coef=np.zeros((3, 4)), intercept=np.zeros(3))
    with pytest.raises(ValueError):
        head.probs(np.zeros((2, 5)))
    with pytest.raises(ValueError):
        LinearHead.from_json({"coef": [[0.0] * 4] * 2, "intercept": [0.0] * 2}, dim=4)


@pytest.mark.parametrize("use_embedder", [True, False])
def test_clear_sentences_get_the_right_label(use_embedder: bool, full: TextSentiment) -> None:
    model = full if use_embedder else TextSentiment()
    cases = [(t, "positive") for t in POSITIVE] + [(t, "negative") for t in NEGATIVE]
    cases += [(t, "neutral") for t in NEUTRAL]
    results = model.score_many([t for t, _ in cases])
    for (text, label), result in zip(cases, results, strict=True):
        assert result is not None
        assert result.label == label, (text, result.probs)
        assert abs(sum(result.probs) - 1.0) < 1e-9
        assert result.source == "text"


@pytest.mark.parametrize("use_embedder", [True, False])
def test_negation_is_not_positive(use_embedder: bool, full: TextSentiment) -> None:
    model = full if use_embedder else TextSentiment()
    for text in ("not good at all", "This is not good at all."):
        result = model.score(text)
        assert result is not None
        assert result.label != "positive", (text, result.probs)
        good = model.score(text.replace("not ", ""))
        assert good is not None and good.probs[2] > result.probs[2]


def test_no_speech_says_nothing(full: TextSentiment) -> None:
    assert full.score("") is None
    assert full.score("   \n\t") is None
    assert full.score("...") is None
    results = full.score_many(["", "I love it", " "])
    assert results[0] is None and results[2] is None
    assert results[1] is not None and results[1].label == "positive"
    assert full.score_many([]) == []


def test_scores_are_deterministic(embed: EmbedFn) -> None:
    texts = [*POSITIVE, *NEGATIVE, *NEUTRAL]
    first = TextSentiment(embed=embed).score_many(texts)
    second = TextSentiment(embed=embed, weights=load_weights()).score_many(texts)
    for a, b in zip(first, second, strict=True):
        assert a is not None and b is not None
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


def test_score_many_embeds_once(embed: EmbedFn) -> None:
    calls: list[int] = []

    def counting(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        calls.append(len(texts))
        return np.asarray(embed(texts), dtype=np.float32)

    long = " ".join(["The camera has a large sensor and the lens is sharp."] * 12)
    results = TextSentiment(embed=counting).score_many(["Great video!", "", long])
    assert len(calls) == 1 and calls[0] == 1 + len(split_chunks(long))
    assert results[1] is None and results[0] is not None and results[2] is not None


def test_long_text_is_chunked_at_sentence_ends() -> None:
    assert split_chunks("One short sentence.") == ["One short sentence."]
    assert split_chunks("  ") == []
    sentence = "This sentence has exactly eight words in it."
    chunks = split_chunks(" ".join([sentence] * 20), max_words=20)
    assert len(chunks) == 10
    assert all(c.startswith("This") and c.endswith("it.") for c in chunks)


def test_shipped_heldout_accuracy_is_reproduced(embed: EmbedFn) -> None:
    from scripts.eval_sentiment import load_sample, signals, three_class
    from scripts.train_sentiment import label_of

    recorded = load_weights().metadata["heldout_sample"]
    sample = load_sample()
    assert len(sample) == recorded["size"]
    texts = [s.text for s in sample]
    gold = np.asarray([label_of(s.rating) for s in sample], dtype=np.int64)
    sigs = signals(texts, embed(texts), embed)
    lexicon_acc, _ = three_class(gold, sigs["lexicon stack (shipped, no embedder)"].pred)
    combined_acc, _ = three_class(gold, sigs["combined (shipped)"].pred)
    assert lexicon_acc == pytest.approx(recorded["accuracy"]["lexicon"], abs=1e-4)  # no float noise here
    # Embeddings may differ in the last bits across machines and batchings: allow one sentence to flip.
    assert combined_acc == pytest.approx(recorded["accuracy"]["combined"], abs=1.01 / len(sample))


def test_training_refuses_the_reserved_movie_review_sentences() -> None:
    from scripts.train_sentiment import Snippet, train

    snippets = [Snippet("movieReviewSnippets", "1", 2.0, "A fine film.")]
    with pytest.raises(ValueError, match="reserved"):
        train(snippets, np.zeros((1, EMBEDDING_DIM), dtype=np.float32))


def _features(**overrides: float) -> AudioFeatures:
    values = {
        "rms_mean": 0.05,
        "rms_std": 0.02,
        "pitch_mean_hz": 180.0,
        "pitch_std_hz": 30.0,
        "voiced_fraction": 0.5,
        "tempo_bpm": 110.0,
    }
    values.update(overrides)
    return AudioFeatures(**values, log_mel=np.full((64,), -40.0, dtype=np.float32))


def test_audio_tone_is_none_without_audio() -> None:
    silent = AudioFeatures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, log_mel=np.zeros((64,), dtype=np.float32))
    assert audio_tone(silent) is None


def test_audio_tone_is_a_weak_neutral_leaning_prior() -> None:
    average, lively, flat = (
        audio_tone(_features()),
        audio_tone(_features(rms_mean=0.2, pitch_std_hz=80.0, tempo_bpm=170.0)),
        audio_tone(_features(rms_mean=0.005, pitch_std_hz=5.0, tempo_bpm=60.0)),
    )
    assert average is not None and lively is not None and flat is not None
    for tone in (average, lively, flat):
        assert tone.label == "neutral" and tone.source == "audio"
        assert abs(sum(tone.probs) - 1.0) < 1e-9
        assert max(tone.probs) < 0.7
    assert lively.probs[2] > average.probs[2] > flat.probs[2]
    assert lively.probs[0] < average.probs[0] < flat.probs[0]
    music = audio_tone(_features(voiced_fraction=0.0, pitch_mean_hz=0.0, pitch_std_hz=0.0))
    assert music is not None and music.label == "neutral"
    assert SENTIMENTS == ("negative", "neutral", "positive")


# Measured on HELDOUT_SENTENCES (2026-12-01): the shipped stack 24/24, the lexicon-only head 22/24.
# Bound: the measured count minus one, and never below the lexicon-only head on the same sentences.
HELDOUT_STACK_MEASURED = 24


def test_the_shipped_stack_beats_the_lexicons_on_sentences_it_never_saw(full: TextSentiment) -> None:
    texts = [text for text, _ in HELDOUT_SENTENCES]
    gold = [label for _, label in HELDOUT_SENTENCES]
    assert sorted(set(gold)) == sorted(SENTIMENTS) and len(gold) == 24  # balanced, 8 of each

    def hits(model: TextSentiment) -> int:
        predicted = [SENTIMENTS[int(row.argmax())] for row in model.probs(texts)]
        return sum(p == g for p, g in zip(predicted, gold, strict=True))

    stack, lexicon = hits(full), hits(TextSentiment())
    print(f"held-out sentences: stack {stack}/24, lexicon-only {lexicon}/24")
    assert stack >= max(HELDOUT_STACK_MEASURED - 1, lexicon)
