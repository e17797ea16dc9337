"""WordNet 3.0 hypernyms for ImageNet classes and common nouns: words that say what a thing *is*.

The ImageNet bridge (models/zero_shot.py) reaches labels through the words of class names, and word
neighbours mislead it ("toucan" near "food", "fly" near "comedy"). Each class written with its hypernym
path and lexicographer domain ("toucan, piciform bird, bird, vertebrate, chordate, animal (animal)") lands
near the labels it belongs to. `expand_text` does the same for nouns in a sentence ("A green fedora." ->
"... (fedora: hat, headdress, clothing; artifact)").

The tables in `models/data/wordnet/` are built by `scripts/build_wordnet_tables.py` from Debian's WordNet
3.0 files (see that folder's README for the licence). They are read once, on first use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CLASS_TEXT_STYLES = ("bare", "path")
DEFAULT_MAX_TERMS = 3  # hypernyms per noun in expand_text: the nearest ones, before generic words begin
# Hypernyms so near the root that they say nothing about a category (every thing is an "object").
GENERIC_HYPERNYMS = frozenset(
    {
        *("entity", "physical entity", "abstraction", "thing", "object", "whole", "living thing"),
        *("organism", "artifact", "instrumentality", "matter", "causal agent", "psychological feature"),
        *("attribute", "relation", "group", "measure", "part", "unit"),
    }
)
# Lexicographer files that name no domain ("noun.Tops" holds the unique beginners).
_NO_DOMAIN = frozenset({"noun.Tops"})
_DOMAIN_NAMES = {"noun.object": "natural object"}  # "object" alone would read as any object
# Function words that WordNet also lists as nouns ("it": information technology, "am": americium).
_STOP_TEXT = """
    a about above after again all also am an and any are as at be been being before below between
    both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its just me more most my no nor not now
    of off on once only or other our ours out over own same she should so some such than that the
    their them then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yes ok okay oh hey hi
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")
# Regular English plurals -> singular, tried in order (WordNet's morphy rules for nouns).
_PLURAL_RULES: tuple[tuple[str, str], ...] = (
    *(("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man")),
    *(("ies", "y"), ("s", "")),
)


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet-1k class as WordNet 3.0 describes it."""

    wnid: str  # "n01843383"
    lemmas: tuple[str, ...]  # synonyms, the class name first
    path: tuple[str, ...]  # hypernyms, nearest first, up to "entity"
    lexname: str  # lexicographer file, e.g. "noun.animal"
    gloss: str  # the definition's first clause


@dataclass(frozen=True)
class _Nouns:
    labels: tuple[str, ...]  # per synset: its first lemma
    parents: tuple[int, ...]  # per synset: index of its first hypernym, -1 at the root
    lexnames: tuple[str, ...]  # per synset
    index: dict[str, int]  # noun -> synset of its most frequent sense
    exceptions: dict[str, str]  # irregular plural -> noun ("geese" -> "goose")


def _read(name: str) -> Any:
    text = (resources.files("models") / "data" / "wordnet" / name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1000 ImageNet-1k classes in index order (models/data/imagenet_classes.txt order)."""
    return tuple(
        ImageNetClass(c["wnid"], tuple(c["lemmas"]), tuple(c["path"]), c["lexname"], c["gloss"])
        for c in _read("imagenet.json")["classes"]
    )


@cache
def _nouns() -> _Nouns:
    table = _read("nouns.json")
    names = table["lexnames"]
    return _Nouns(
        labels=tuple(row[0] for row in table["synsets"]),
        parents=tuple(row[1] for row in table["synsets"]),
        lexnames=tuple(names[row[2]] for row in table["synsets"]),
        index=table["nouns"],
        exceptions=table["exceptions"],
    )


def domain(lexname: str) -> str:
    """A readable domain for a lexicographer file: "noun.animal" -> "animal"; "" for noun.Tops."""
    if lexname in _NO_DOMAIN:
        return ""
    return _DOMAIN_NAMES.get(lexname, lexname.split(".", 1)[1])


def informative(path: tuple[str, ...]) -> tuple[str, ...]:
    """`path` without the generic hypernyms (GENERIC_HYPERNYMS), order kept."""
    return tuple(term for term in path if term not in GENERIC_HYPERNYMS)


def imagenet_class_texts(style: str = "path") -> tuple[str, ...]:
    """One text per ImageNet class, in index order, for the text encoder.

    style "bare": the class name ("toucan"), what models/vision.py gives as class names.
    style "path": the name, its non-generic hypernyms nearest first, and its domain in parentheses:
      "toucan, piciform bird, bird, vertebrate, chordate, animal (animal)".
    """
    if style not in CLASS_TEXT_STYLES:
        raise ValueError(f"unknown class text style {style!r}; one of {CLASS_TEXT_STYLES}")
    classes = imagenet_classes()
    if style == "bare":
        return tuple(c.lemmas[0] for c in classes)
    return tuple(_class_text(c) for c in classes)


def imagenet_class_terms() -> tuple[tuple[str, ...], ...]:
    """Per ImageNet class, in index order, the terms that say what it is: its name, then its non-generic
    hypernyms nearest first ("toucan", "piciform bird", "bird", "vertebrate", "chordate", "animal").

    The hierarchy bridge (models/zero_shot.py) compares each term with the labels on its own, so a class
    reaches "animals" through "animal" however many bird words come before it."""
    return tuple(
        (c.lemmas[0], *(t for t in informative(c.path) if t != c.lemmas[0])) for c in imagenet_classes()
    )


def _class_text(c: ImageNetClass) -> str:
    text = ", ".join((c.lemmas[0], *informative(c.path)))
    area = domain(c.lexname)
    return f"{text} ({area})" if area else text


def _lookup(word: str) -> int | None:
    """Synset index of `word` (any case, singular or plural), or None."""
    nouns = _nouns()
    word = word.lower().removesuffix("'s")  # possessive: "the dog's bowl"
    if word in nouns.index:
        return nouns.index[word]
    if word in nouns.exceptions:
        return nouns.index[nouns.exceptions[word]]
    for suffix, replacement in _PLURAL_RULES:
        if word.endswith(suffix) and not word.endswith("ss"):
            base = word[: len(word) - len(suffix)] + replacement
            if base in nouns.index:
                return nouns.index[base]
    return None


def _chain(synset: int) -> tuple[str, ...]:
    nouns = _nouns()
    labels = []
    node = nouns.parents[synset]
    while node != -1:
        labels.append(nouns.labels[node])
        node = nouns.parents[node]
    return tuple(labels)


def noun_hypernyms(word: str) -> tuple[str, ...]:
    """Hypernyms of the most frequent noun sense of `word`, nearest first, to "entity"; () if unknown.

    Plurals and case are handled ("Geese" -> goose's). Words mostly used as another part of speech
    ("green", "fly") and function words are not in the table.
    """
    if word.lower() in STOP_WORDS:
        return ()
    synset = _lookup(word)
    return () if synset is None else _chain(synset)


def noun_domain(word: str) -> str:
    """The domain of the most frequent noun sense of `word` ("fedora" -> "artifact"); "" if unknown."""
    synset = None if word.lower() in STOP_WORDS else _lookup(word)
    return "" if synset is None else domain(_nouns().lexnames[synset])


def expand_text(text: str, max_terms: int = DEFAULT_MAX_TERMS) -> str:
    """`text` followed by what its nouns are: "A green fedora." -> "A green fedora. (fedora: hat, headdress,
    clothing; artifact)". Each distinct noun once, in order, in its own parentheses; up to `max_terms`
    non-generic hypernyms each.

    Two-word nouns in the table ("ice cream") are matched before single words. Text with no known noun is
    returned unchanged.
    """
    words = _WORD.findall(text)
    notes: list[str] = []
    seen: set[int] = set()
    i = 0
    while i < len(words):
        pair = f"{words[i]} {words[i + 1]}" if i + 1 < len(words) else ""
        if pair and words[i].lower() not in STOP_WORDS and _lookup(pair) is not None:
            word, i = pair, i + 2
        else:
            word, i = words[i], i + 1
        synset = None if word.lower() in STOP_WORDS else _lookup(word)
        if synset is None or synset in seen:
            continue
        seen.add(synset)
        terms = informative(_chain(synset))[:max_terms]
        area = domain(_nouns().lexnames[synset])
        note = f"{word.lower()}: {', '.join(terms)}" if terms else word.lower()
        notes.append(f"({note}; {area})" if area else f"({note})")
    return " ".join((text, *notes))
