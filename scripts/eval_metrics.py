"""The dev-set metrics, on plain values: accuracy tables, a confusion matrix, sentiment scores and WER.

Everything here is pure (no models, no files), so the numbers can be checked on hand-made inputs and
recomputed in a loop while tuning. `system_metrics` gives one system's whole table as a JSON-able dict.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "es", "de", "zh")  # report order; other languages follow, sorted
POLAR = ("negative", "positive")


@dataclass(frozen=True)
class DevClip:
    """One dev-set clip: its manifest row (path made absolute) and which manifest(s) list it."""

    path: str
    rel: str  # the path as the manifest gives it (relative to the csv)
    category: str | None
    sentiment: str | None
    split: str
    kind: str  # described | recorded_voice | no_speech | off_topic | sentence
    language: str  # en | es | de | zh
    twin: str
    voice: str
    text: str  # the exact words spoken ("" when none): the WER reference
    source: str
    in_category: bool  # listed in category.csv: scored for category
    in_sentiment: bool  # listed in sentiment.csv: scored for sentiment


@dataclass(frozen=True)
class Answer:
    """What one system said about one clip (None: it said nothing, e.g. no speech, or it failed)."""

    category: str | None = None
    vision: str | None = None  # the frames alone
    text: str | None = None  # the transcript alone
    sentiment: str | None = None
    transcript: str = ""
    error: str | None = None
    top: dict[str, float] | None = None  # the best few fused category scores, for error analysis


# -- transcripts ------------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Lowercase, punctuation removed (Unicode category P*: also 。，¿ «»), whitespace collapsed."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.casefold())
    return " ".join(kept.split())


def words(text: str) -> list[str]:
    """The normalised tokens: words split on spaces, and every CJK character a token of its own (Chinese
    is written without spaces, so for zh this is a character error rate)."""
    out: list[str] = []
    for word in normalise_text(text).split():
        run = ""
        for ch in word:
            if _is_cjk(ch):
                if run:
                    out.append(run)
                    run = ""
                out.append(ch)
            else:
                run += ch
        if run:
            out.append(run)
    return out


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions, one row at a time."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def wer(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Corpus WER over (reference, hypothesis) pairs: total edits / total reference words."""
    errors = total = 0
    for ref, hyp in pairs:
        ref_words = words(ref)
        errors += edit_distance(ref_words, words(hyp))
        total += len(ref_words)
    return {"n": len(pairs), "words": total, "errors": errors, "wer": errors / total if total else None}


# -- category ---------------------------------------------------------------------------------------


def accuracy(gold: Sequence[str | None], pred: Sequence[str | None]) -> float | None:
    """Share of exact matches; None predictions are wrong. None for no rows."""
    return share([g == p for g, p in zip(gold, pred, strict=True)])


def share(flags: Sequence[bool]) -> float | None:
    """Share of true flags; None for no rows."""
    return sum(flags) / len(flags) if flags else None


def confusion(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> list[list[int]]:
    """(L, L+1) counts, rows the true label, columns the predicted one in `labels` order; the last
    column counts predictions outside the labels (None: no answer or a failure)."""
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        if g in index:
            matrix[index[g]][index.get(p, len(labels)) if p is not None else len(labels)] += 1
    return matrix


def grouped(
    clips: Sequence[DevClip], key: Callable[[DevClip], str], score: Callable[[list[int]], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`score(row indices)` per group of `key` ("(none)" for an empty key); languages in LANGUAGES order,
    other keys sorted."""
    groups: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(key(clip) or "(none)", []).append(i)
    order = [g for g in LANGUAGES if g in groups] + sorted(g for g in groups if g not in LANGUAGES)
    return {g: score(groups[g]) for g in order}


def category_metrics(
    clips: Sequence[DevClip], answers: Sequence[Answer], labels: Sequence[str]
) -> dict[str, Any]:
    """Top-1 accuracy fused, vision-only, transcript-only and either-modality, per class, language and
    kind, and the confusion matrix; over the clips with a category."""
    rows = [i for i, c in enumerate(clips) if c.in_category and c.category]
    sub = [clips[i] for i in rows]
    ans = [answers[i] for i in rows]

    def score(idx: list[int]) -> dict[str, Any]:
        gold = [sub[i].category for i in idx]
        return {
            "n": len(idx),
            "fused": accuracy(gold, [ans[i].category for i in idx]),
            "vision": accuracy(gold, [ans[i].vision for i in idx]),
            "text": accuracy(gold, [ans[i].text for i in idx]),
            "either": share([sub[i].category in (ans[i].vision, ans[i].text) for i in idx]),
        }

    everything = score(list(range(len(sub))))
    return {
        **everything,
        "errors": sum(a.error is not None for a in ans),
        "per_class": grouped(sub, lambda c: c.category or "", score),
        "by_language": grouped(sub, lambda c: c.language, score),
        "by_kind": grouped(sub, lambda c: c.kind, score),
        "confusion": {
            "labels": list(labels),
            "matrix": confusion([c.category or "" for c in sub], [a.category for a in ans], labels),
        },
    }


# -- sentiment --------------------------------------------------------------------------------------


def sentiment_metrics(clips: Sequence[DevClip], answers: Sequence[Answer]) -> dict[str, Any]:
    """Polar accuracy (positive/negative gold; an answer of neutral is wrong), 3-class accuracy, and
    how many polar clips were answered neutral; over the clips of sentiment.csv with a sentiment."""
    rows = [i for i, c in enumerate(clips) if c.in_sentiment and c.sentiment]
    sub = [clips[i] for i in rows]
    ans = [answers[i] for i in rows]

    def score(idx: list[int]) -> dict[str, Any]:
        polar = [i for i in idx if sub[i].sentiment in POLAR]
        return {
            "n": len(idx),
            "n_polar": len(polar),
            "polar": accuracy([sub[i].sentiment for i in polar], [ans[i].sentiment for i in polar]),
            "three_class": accuracy([sub[i].sentiment for i in idx], [ans[i].sentiment for i in idx]),
            "polar_as_neutral": sum(ans[i].sentiment == "neutral" for i in polar),
        }

    return {
        **score(list(range(len(sub)))),
        "errors": sum(a.error is not None for a in ans),
        "by_language": grouped(sub, lambda c: c.language, score),
        "by_kind": grouped(sub, lambda c: c.kind, score),
    }


def transcript_metrics(clips: Sequence[DevClip], answers: Sequence[Answer]) -> dict[str, Any]:
    """WER against the spoken text, over every clip that has one (zh: per character), and per language."""
    rows = [i for i, c in enumerate(clips) if c.text.strip()]
    sub = [clips[i] for i in rows]
    pairs = [(clips[i].text, answers[i].transcript) for i in rows]
    return {
        **wer(pairs),
        "by_language": grouped(sub, lambda c: c.language, lambda idx: wer([pairs[i] for i in idx])),
    }


def system_metrics(
    clips: Sequence[DevClip], answers: Sequence[Answer], labels: Sequence[str]
) -> dict[str, Any]:
    """One system's whole table (JSON-able)."""
    if len(clips) != len(answers):
        raise ValueError(f"{len(clips)} clips but {len(answers)} answers")
    return {
        "clips": len(clips),
        "errors": sum(a.error is not None for a in answers),
        "category": category_metrics(clips, answers, labels),
        "sentiment": sentiment_metrics(clips, answers),
        "transcript": transcript_metrics(clips, answers),
    }
