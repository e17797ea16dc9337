"""Sentiment signals: text (lexicons + two embedding classifiers, stacked) and a weak audio prior.

Text. Each sentence gets five lexicon features, all offline and with the lexicons' own negation rules:
VADER 3.3.2 (compound, pos and neg shares; MIT) and TextBlob 0.20.1's Pattern lexicon (polarity,
subjectivity; MIT code, PDDL lexicon). With an embedder (multilingual-e5-small, "query: " vectors), two
learned signals join them: our logistic regression on the embedding, and sentimentai's neural MLP head on
the same vector (`models.sentiment_heads`); a small stacking regression combines the three. Without an
embedder, a lexicon-only head is used. All heads are 3-class (negative / neutral / positive): the
training ratings are continuous, so "neutral" (weak or no sentiment) is learned from labelled data.

Our weights (`models/data/sentiment/text_sentiment.json`, rebuilt by `scripts/train_sentiment.py`) were
trained on the human-rated sentences of Hutto & Gilbert's VADER study (ICWSM 2014: tweets, New York Times
editorial sentences, Amazon review sentences; MIT), which ship in the vaderSentiment 3.3.2 sdist. The
study's movie-review sentences are reserved data and are not used at all; `scripts/eval_sentiment.py`
scores the held-out 20 % of the training corpora. See `models/data/sentiment/README.md` for data,
licences and accuracy.

Long texts (a whole transcript) are cut at sentence ends into chunks of at most MAX_CHUNK_WORDS words;
the text's distribution is the word-weighted mean of its chunks'. Empty text (no speech) gives None,
never "neutral": the absence of speech says nothing about sentiment.

Audio. `audio_tone` is a hand-set heuristic, not a trained model (no labelled audio-emotion data is
available offline): mostly neutral, shifted a little towards positive for energetic, lively speech and a
little towards negative for quiet, flat speech. Arousal is not valence; the shift is kept small on purpose.

Nothing is loaded at import: lexicons, weights and the embedder are used on first call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from models.sentiment_heads import (
    EMBEDDING_DIM,
    LEXICON_FEATURES,
    MlpHead,
    SentimentWeights,
    load_neural_head,
    load_weights,
    stack_features,
)
from models.types import SENTIMENTS, AudioFeatures, SentimentScores

F64 = npt.NDArray[np.float64]
EmbedFn = Callable[[Sequence[str]], npt.NDArray[Any]]  # texts -> (N, 384) L2-normalised e5-small embeddings

NEUTRAL_BAND = 0.5  # training labels: a mean human rating (-4..+4) within +-0.5 is "neutral"
MAX_CHUNK_WORDS = 60  # training sentences are up to ~60 words; longer texts are split at sentence ends

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_WORD = re.compile(r"\w", re.UNICODE)


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _pattern() -> Any:
    from textblob.en.sentiments import PatternAnalyzer

    return PatternAnalyzer()


def lexicon_features(texts: Sequence[str]) -> F64:
    """(N, len(LEXICON_FEATURES)) float64: the VADER and TextBlob scores of each text, as they give them."""
    vader, pattern = _vader(), _pattern()
    out = np.zeros((len(texts), len(LEXICON_FEATURES)), dtype=np.float64)
    for row, text in enumerate(texts):
        v = vader.polarity_scores(text)
        polarity, subjectivity = pattern.analyze(text)[:2]
        out[row] = (v["compound"], v["pos"], v["neg"], polarity, subjectivity)
    return out


def has_words(text: str) -> bool:
    """False for empty, whitespace-only or punctuation-only text (no speech)."""
    return bool(_WORD.search(text))


def split_chunks(text: str, max_words: int = MAX_CHUNK_WORDS) -> list[str]:
    """Consecutive sentences packed into chunks of at most `max_words` words (a long sentence stays whole)."""
    text = " ".join(text.split())
    if len(text.split()) <= max_words:
        return [text] if text else []
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for sentence in _SENTENCE_END.split(text):
        n = len(sentence.split())
        if current and count + n > max_words:
            chunks.append(" ".join(current))
            current, count = [], 0
        current.append(sentence)
        count += n
    if current:
        chunks.append(" ".join(current))
    return chunks


class TextSentiment:
    """Sentiment of a text (a transcript or one of its segments) as SENTIMENTS probabilities.

    embed: a multilingual-e5-small encoder's function (texts -> (N, 384) L2-normalised "query: " vectors,
    `models.text.TextEncoder("package:multilingual-e5-small").encode`). Without it the lexicon-only head is
    used (weaker: see the README's table).
    """

    def __init__(
        self,
        embed: EmbedFn | None = None,
        weights: SentimentWeights | None = None,
        neural: MlpHead | None = None,
    ) -> None:
        self._embed = embed
        self._weights = weights
        self._neural = neural

    def load(self) -> TextSentiment:
        """Load the heads and the lexicons now instead of on the first text; returns self."""
        _ = self.weights, self.neural, _vader(), _pattern()
        return self

    @property
    def weights(self) -> SentimentWeights:
        if self._weights is None:
            self._weights = load_weights()
        return self._weights

    @property
    def neural(self) -> MlpHead:
        if self._neural is None:
            self._neural = load_neural_head()
        return self._neural

    @property
    def uses_embeddings(self) -> bool:
        return self._embed is not None

    def embeddings(self, texts: Sequence[str]) -> F64:
        if self._embed is None:
            raise RuntimeError("TextSentiment was built without an embedding function")
        vectors = np.asarray(self._embed(list(texts)), dtype=np.float64)
        if vectors.shape != (len(texts), EMBEDDING_DIM):
            raise ValueError(f"embedder returned {vectors.shape}, expected ({len(texts)}, {EMBEDDING_DIM})")
        return vectors

    def head_probs(self, texts: Sequence[str], embeddings: npt.ArrayLike | None = None) -> dict[str, F64]:
        """Per-head (N, 3) probabilities of whole texts, no chunking: "lexicon", and with embeddings
        "embedding", "neural" and "combined". `embeddings` (N, 384) may be given instead of the embedder."""
        if not texts:
            empty = np.zeros((0, len(SENTIMENTS)), dtype=np.float64)
            return {"lexicon": empty, "embedding": empty, "neural": empty, "combined": empty}
        w = self.weights
        lexicon = lexicon_features(texts)
        out = {"lexicon": w.lexicon.probs(lexicon)}
        if embeddings is None and self._embed is None:
            return out
        vectors = self.embeddings(texts) if embeddings is None else np.asarray(embeddings, dtype=np.float64)
        log_probs = w.embedding.log_probs(vectors)
        neural = self.neural.log_probs(vectors)
        out["embedding"] = np.exp(log_probs)
        out["neural"] = np.exp(neural)
        out["combined"] = w.combined.probs(stack_features(log_probs, neural, lexicon))
        return out

    def probs(self, texts: Sequence[str]) -> F64:
        """(N, 3) probabilities of whole texts (no chunking) from the best available head."""
        heads = self.head_probs(texts)
        return heads["combined"] if "combined" in heads else heads["lexicon"]

    def score_many(self, texts: Sequence[str]) -> list[SentimentScores | None]:
        """One result per text; None for a text without words. One embedder call for all chunks."""
        chunks: list[str] = []
        owners: list[int] = []
        for index, text in enumerate(texts):
            if not has_words(text):
                continue
            for chunk in split_chunks(text):
                chunks.append(chunk)
                owners.append(index)
        results: list[SentimentScores | None] = [None] * len(texts)
        if not chunks:
            return results
        probs = self.probs(chunks)
        weights = np.asarray([max(len(c.split()), 1) for c in chunks], dtype=np.float64)
        owner = np.asarray(owners)
        for index in sorted(set(owners)):
            rows = owner == index
            mean = (probs[rows] * weights[rows, None]).sum(axis=0) / weights[rows].sum()
            results[index] = _scores(mean, "text")
        return results

    def score(self, text: str) -> SentimentScores | None:
        """The text's sentiment; None for empty or whitespace-only text (no speech says nothing)."""
        return self.score_many([text])[0]


# audio_tone: hand-set constants (a heuristic, not fitted to data).
AUDIO_BASE = (0.2, 0.6, 0.2)  # (negative, neutral, positive) for average speech
AUDIO_POS_SHIFT = 0.10  # positive share moves by up to +-0.10 with arousal
AUDIO_NEG_SHIFT = 0.05  # negative share moves by up to -+0.05
_RMS_CENTER, _RMS_SCALE = 0.05, 0.05  # loudness (RMS of [-1, 1] samples)
_PITCH_STD_CENTER, _PITCH_STD_SCALE = 30.0, 30.0  # Hz: monotone ~10, lively ~60
_TEMPO_CENTER, _TEMPO_SCALE = 110.0, 50.0  # bpm of onsets


def arousal(features: AudioFeatures) -> float:
    """A rough [-1, 1] arousal estimate: 0.4 loudness + 0.4 pitch variability + 0.2 pace, each clipped."""
    energy = _clip((features.rms_mean - _RMS_CENTER) / _RMS_SCALE)
    lively = 0.0
    if features.voiced_fraction > 0.05 and features.pitch_mean_hz > 0:
        lively = _clip((features.pitch_std_hz - _PITCH_STD_CENTER) / _PITCH_STD_SCALE)
    pace = _clip((features.tempo_bpm - _TEMPO_CENTER) / _TEMPO_SCALE) if features.tempo_bpm > 0 else 0.0
    return 0.4 * energy + 0.4 * lively + 0.2 * pace


def audio_tone(features: AudioFeatures) -> SentimentScores | None:
    """A weak prior from prosody; None when there is no audio (all features zero).

    Always neutral-leaning (neutral stays the largest share): at most +-0.10 positive and -+0.05 negative
    from `arousal`. A hand-set heuristic, not a trained model.
    """
    scalars = (
        features.rms_mean,
        features.rms_std,
        features.pitch_mean_hz,
        features.pitch_std_hz,
        features.voiced_fraction,
        features.tempo_bpm,
    )
    if not any(scalars) and not np.any(features.log_mel):
        return None
    if not all(math.isfinite(x) for x in scalars):
        return None
    a = arousal(features)
    negative = AUDIO_BASE[0] - AUDIO_NEG_SHIFT * a
    positive = AUDIO_BASE[2] + AUDIO_POS_SHIFT * a
    return _scores(np.asarray([negative, 1.0 - negative - positive, positive]), "audio")


def _clip(x: float) -> float:
    return float(min(1.0, max(-1.0, x)))


def _scores(probs: npt.ArrayLike, source: str) -> SentimentScores:
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
    p = p / p.sum()
    return SentimentScores(probs=(float(p[0]), float(p[1]), float(p[2])), source=source)
