"""Accuracy and macro-F1 of each text-sentiment signal alone and combined.

Evaluation set: the 20 % of the VADER ICWSM-14 training corpora (tweets, NYT editorials, Amazon reviews, in
the vaderSentiment 3.3.2 sdist, MIT) that scripts/train_sentiment.py never trains on (same seed, same
split), or with --sample the 150 of them shipped in models/data/sentiment/heldout_sample.json. The study's
movie-review sentences are reserved data and are not read at all. Sentiment on real speech is measured on
the dev set instead (`scripts/eval_devset.py`).

Gold labels: 3-class from the mean human rating (<= -0.5 negative, >= +0.5 positive, else neutral);
"binary" is pos-vs-neg accuracy on polar sentences (|rating| >= 0.5). A signal's binary call is the sign of
its polarity score (P(pos) - P(neg) for the heads); a zero score (the lexicon found nothing) gets half
credit, the expected score of a coin flip.

    .venv/bin/python -m scripts.eval_sentiment             # the held-out 20 % (pip fetches the sdist once)
    .venv/bin/python -m scripts.eval_sentiment --sample    # only the shipped 150-sentence held-out sample
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.sentiment import LEXICON_FEATURES, EmbedFn, TextSentiment, lexicon_features
from scripts.train_sentiment import (
    TRAIN_CORPORA,
    Snippet,
    default_cache_dir,
    e5_embedder,
    embed_cached,
    fetch_vader_sdist,
    label_of,
    load_corpora,
    split_heldout,
)

F64 = npt.NDArray[np.float64]
VADER_THRESHOLD = 0.05  # VADER's documented compound cut-offs for positive / negative
PROTOTYPES = {  # zero-shot embedding prototypes: a reference signal, not part of the shipped model
    0: ("This is terrible, I hate it.", "An awful, boring waste of time.", "Very disappointing and sad."),
    1: (
        "The meeting is at three o'clock.",
        "The box contains two cables.",
        "Here is the schedule for today.",
    ),
    2: ("This is great, I love it.", "A wonderful, delightful experience.", "Excellent, I am so happy."),
}


@dataclass(frozen=True)
class Signal:
    pred: npt.NDArray[np.int64]  # (N,) 3-class prediction, index into SENTIMENTS
    polarity: F64  # (N,) > 0 positive, < 0 negative


def _from_probs(p: F64) -> Signal:
    eps = 1e-12
    return Signal(p.argmax(axis=1), np.log(p[:, 2] + eps) - np.log(p[:, 0] + eps))


def _from_score(score: F64, threshold: float) -> Signal:
    pred = np.where(score >= threshold, 2, np.where(score <= -threshold, 0, 1))
    if threshold == 0.0:
        pred = np.where(score > 0, 2, np.where(score < 0, 0, 1))
    return Signal(pred.astype(np.int64), score)


def signals(texts: Sequence[str], vectors: npt.ArrayLike | None, embed: EmbedFn | None) -> dict[str, Signal]:
    """Every signal on the texts; `vectors` (N, 384) are their e5-small embeddings (None: lexicons only)."""
    lex = lexicon_features(texts)
    col = {name: i for i, name in enumerate(LEXICON_FEATURES)}
    out = {
        "vader (compound, +-0.05)": _from_score(lex[:, col["vader_compound"]], VADER_THRESHOLD),
        "textblob (polarity sign)": _from_score(lex[:, col["textblob_polarity"]], 0.0),
    }
    afinn = _afinn()
    if afinn is not None:
        out["afinn (score sign; not shipped)"] = _from_score(np.asarray([afinn(t) for t in texts]), 0.0)
    heads = TextSentiment().head_probs(texts, embeddings=vectors)
    out["lexicon stack (shipped, no embedder)"] = _from_probs(heads["lexicon"])
    if vectors is not None:
        x = np.asarray(vectors, dtype=np.float64)
        if embed is not None:
            protos = np.asarray(embed([t for k in (0, 1, 2) for t in PROTOTYPES[k]]), dtype=np.float64)
            centroids = protos.reshape(3, len(PROTOTYPES[0]), -1).mean(axis=1)
            sims = x @ centroids.T
            out["embedding prototypes (zero-shot)"] = Signal(sims.argmax(1), sims[:, 2] - sims[:, 0])
        out["embedding head"] = _from_probs(heads["embedding"])
        out["neural head (sentimentai)"] = _from_probs(heads["neural"])
        out["combined (shipped)"] = _from_probs(heads["combined"])
    return out


def _afinn() -> Callable[[str], float] | None:
    try:
        from afinn import Afinn
    except ImportError:
        return None
    scorer = Afinn(emoticons=True)
    return lambda text: float(scorer.score(text))


def three_class(gold: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> tuple[float, float]:
    """(accuracy, macro-F1 over the three classes)."""
    from sklearn.metrics import f1_score

    return float((gold == pred).mean()), float(f1_score(gold, pred, average="macro", labels=[0, 1, 2]))


def binary_accuracy(positive: npt.NDArray[np.bool_], polarity: F64) -> float:
    """Sign agreement; a zero polarity gets half credit."""
    hits = np.where(polarity == 0, 0.5, (polarity > 0) == positive)
    return float(hits.mean())


def report(name: str, snippets: Sequence[Snippet], sigs: dict[str, Signal]) -> dict[str, Any]:
    gold = np.asarray([label_of(s.rating) for s in snippets], dtype=np.int64)
    ratings = np.asarray([s.rating for s in snippets])
    polar = gold != 1
    counts = {k: int((gold == k).sum()) for k in range(3)}
    header = f"{name}: {len(snippets)} sentences (neg/neu/pos {counts[0]}/{counts[1]}/{counts[2]})"
    columns = f"{'signal':38s} {'acc3':>6s} {'F1-3':>6s} {'binary':>7s}"
    print(f"\n{header}\n{columns}")
    results: dict[str, Any] = {}
    for signal_name, sig in sigs.items():
        acc, f1 = three_class(gold, sig.pred)
        row = {
            "accuracy": acc,
            "macro_f1": f1,
            "binary": binary_accuracy(ratings[polar] > 0, sig.polarity[polar]),
        }
        print(f"{signal_name:38s} {acc:6.3f} {f1:6.3f} {row['binary']:7.3f}")
        results[signal_name] = {k: round(v, 4) for k, v in row.items()}
    return results


def load_sample() -> list[Snippet]:
    """The 150 held-out sentences shipped with the weights (no download needed)."""
    text = (
        resources.files("models").joinpath("data/sentiment/heldout_sample.json").read_text(encoding="utf-8")
    )
    return [Snippet(r["corpus"], r["id"], float(r["rating"]), r["text"]) for r in json.loads(text)["rows"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sdist", type=Path, help="a local vaderSentiment-3.3.2.tar.gz")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--sample", action="store_true", help="only the shipped held-out sample")
    parser.add_argument("--no-embedder", action="store_true", help="lexicon signals only (fast)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    embed = None if args.no_embedder else e5_embedder()
    if args.sample:
        name, snippets = "held-out sample (shipped)", load_sample()
    else:
        sdist = args.sdist or fetch_vader_sdist(args.cache_dir)
        train_corpora = load_corpora(sdist, TRAIN_CORPORA)
        _, held = split_heldout(train_corpora)
        name, snippets = "held-out 20% of training corpora", [train_corpora[i] for i in held]
    texts = [s.text for s in snippets]
    vectors = None if embed is None else embed_cached(embed, texts, None if args.sample else args.cache_dir)
    results = {name: report(name, snippets, signals(texts, vectors, embed))}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
