"""What the dev set contains, decided before anything is rendered: one ClipSpec per clip, and the split.

Pure functions only (no files, no tools), so tests can check the plan without the optional packages.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scripts.devset_sentences import OFF_TOPIC, Sentence
from scripts.devset_sources import CATEGORIES, PictureItem
from scripts.devset_speech import Voice, pick_voice, stable_index
from scripts.devset_twins import TRANSLATIONS, TWIN_LANGUAGES

MANIFEST_COLUMNS = (
    "path",
    "category",
    "sentiment",
    "split",
    "kind",
    "language",
    "twin",
    "voice",
    "text",
    "source",
)
KINDS = ("described", "recorded_voice", "no_speech", "off_topic", "sentence")
PER_CATEGORY = 24  # pictures per category (twins first, then photos, then emoji)
PER_DESCRIPTION = 3  # pictures that may say the same words ('A hammer.'): different hammers, one split
SECOND_VOICE_EVERY = 3  # about one item in 3 is also spoken by a second voice
EXTRA_KIND_EVERY = 8  # about one item in 8 gets a no-speech clip, another one in 8 an off-topic one
# Real recorded sounds from gcompris-qt-data's memory-sound activity, under the no-speech clips that are
# not silent: neutral noises that say nothing about any category.
NEUTRAL_SOUNDS = (
    "LRRain_in_garden_01_LA_cut.ogg", "LRDoor_Open_2_LA.ogg", "LRFactory_noise_01_LA.ogg",
    "LRFactory_noise_03_LA.ogg", "LRObject_falling_01_LA.ogg",
)  # fmt: skip

SOUND_SOURCE = "gcompris-qt-data:memory-sound.rcc/gcompris/src/activities/memory-sound/resource"


@dataclass(frozen=True)
class ClipSpec:
    """One clip to render and its manifest row."""

    path: str  # relative to the output folder: 'clips/category/animals/...mp4'
    item_id: str  # the picture or sentence: the split unit, and the manifest's `twin`
    category: str  # '' for sentiment clips
    sentiment: str  # '' for category clips
    kind: str  # one of KINDS
    language: str  # 'en', 'es', 'de', 'zh'; '' when nothing is said
    voice: Voice | None  # None when nothing is said
    text: str  # the exact words spoken, '' when none
    source: str  # package/file of the picture or sentence
    picture: str  # 'black', or '<origin>|<ref>' of a PictureItem
    sound: str  # a NEUTRAL_SOUNDS file under no-speech clips, '' for silence or speech
    direction: int  # which way the picture drifts (0-3)


def slug(text: str) -> str:
    """'gcompris:lang:dog' -> 'gcompris-lang-dog' (file-name safe, lower case)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_splits(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """item id -> 'tune' or 'test', half each within every stratum (category or sentiment).

    Items are ordered by a hash of their id inside each stratum and dealt alternately, so the halves are
    balanced, the same on every run, and fixed per item: every clip of an item (its voices, its language
    twins, its no-speech and off-topic clips) inherits the item's half.
    """
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for item_id, stratum in items:
        by_stratum[stratum].append(item_id)
    splits = {}
    for stratum, ids in by_stratum.items():
        offset = stable_index(stratum, 2)  # odd strata do not all give their extra item to 'tune'
        for rank, item_id in enumerate(sorted(set(ids), key=_hash)):
            splits[item_id] = ("tune", "test")[(rank + offset) % 2]
    return splits


def picture_splits(pictures: Iterable[PictureItem]) -> dict[str, str]:
    """item id -> split for pictures, decided per description: all pictures that say the same words
    ('A hammer.') land in the same half, so no spoken description is in both halves."""
    pictures = list(pictures)
    groups = assign_splits((p.description.lower(), p.category) for p in pictures)
    return {p.item_id: groups[p.description.lower()] for p in pictures}


def select_pictures(items: Sequence[PictureItem], per_category: int = PER_CATEGORY) -> list[PictureItem]:
    """Up to `per_category` pictures per category: twin pictures first, then photos, then emoji.

    At most PER_DESCRIPTION pictures say the same words (photos before emoji); they share one split
    (see picture_splits).
    """
    chosen: list[PictureItem] = []
    said: Counter[str] = Counter()

    def rank(item: PictureItem) -> tuple[int, int, str]:
        return (item.item_id not in TRANSLATIONS, item.origin != "gcompris", _hash(item.item_id))

    for category in CATEGORIES:
        taken = 0
        for item in sorted((i for i in items if i.category == category), key=rank):
            if taken == per_category or said[item.description.lower()] == PER_DESCRIPTION:
                continue
            said[item.description.lower()] += 1
            chosen.append(item)
            taken += 1
    return chosen


def category_specs(pictures: Sequence[PictureItem]) -> list[ClipSpec]:
    """Every category clip of the chosen pictures: described (1-2 voices), twins, no-speech, off-topic."""
    return [spec for item in pictures for spec in _item_specs(item)]


def _item_specs(item: PictureItem) -> list[ClipSpec]:
    clip = functools.partial(_clip, item)
    first = pick_voice("en", item.item_id)
    specs = [clip("described", "en", first, item.description)]
    if stable_index(item.item_id + "|voice2", SECOND_VOICE_EVERY) == 0:
        second = pick_voice("en", item.item_id + "|voice2")
        if second != first:
            specs.append(clip("described", "en", second, item.description))
    for language, text in zip(TWIN_LANGUAGES, TRANSLATIONS.get(item.item_id, ()), strict=False):
        specs.append(clip("described", language, pick_voice(language, item.item_id), text))
    extra = stable_index(item.item_id + "|extra", EXTRA_KIND_EVERY)
    if extra == 1:
        sound_pick = stable_index(item.item_id + "|sound", len(NEUTRAL_SOUNDS) + 1)
        sound = NEUTRAL_SOUNDS[sound_pick - 1] if sound_pick else ""  # 0: silence
        specs.append(clip("no_speech", "", None, "", sound))
    elif extra == 2:
        line = OFF_TOPIC[stable_index(item.item_id + "|line", len(OFF_TOPIC))]
        specs.append(clip("off_topic", "en", pick_voice("en", item.item_id + "|off"), line))
    return specs


def _clip(
    item: PictureItem, kind: str, language: str, voice: Voice | None, text: str, sound: str = ""
) -> ClipSpec:
    base = f"clips/category/{slug(item.category)}/{slug(item.item_id)}"
    tag = f"{kind}-{language}-{slug(voice.name)}" if voice else f"{kind}-{slug(sound) or 'silence'}"
    picture = f"{item.origin}|{item.ref}"
    direction = stable_index(item.item_id + "|direction", 4)
    return ClipSpec(f"{base}__{tag}.mp4", item.item_id, item.category, "", kind, language, voice, text,
                    item.source, picture, sound, direction)  # fmt: skip


def sentiment_specs(sentences: Sequence[Sentence]) -> list[ClipSpec]:
    """One clip per sentence over a black screen, plus a second voice for about one sentence in 3."""
    specs = []
    for sentence in sentences:
        voices = [pick_voice("en", sentence.item_id)]
        if stable_index(sentence.item_id + "|voice2", SECOND_VOICE_EVERY) == 0:
            voices.append(pick_voice("en", sentence.item_id + "|voice2"))
        for voice in dict.fromkeys(voices):  # same voice drawn twice: one clip
            path = f"clips/sentiment/{sentence.sentiment}/{slug(sentence.item_id)}__{slug(voice.name)}.mp4"
            specs.append(ClipSpec(path, sentence.item_id, "", sentence.sentiment, "sentence", "en", voice,
                                  sentence.text, sentence.source, "black", "", 0))  # fmt: skip
    return specs


def manifest_rows(specs: Sequence[ClipSpec], splits: dict[str, str]) -> list[dict[str, str]]:
    """The manifest rows (MANIFEST_COLUMNS) of `specs`, sorted by path."""
    rows = []
    for spec in sorted(specs, key=lambda s: s.path):
        rows.append({
            "path": spec.path, "category": spec.category, "sentiment": spec.sentiment,
            "split": splits[spec.item_id], "kind": spec.kind, "language": spec.language,
            "twin": spec.item_id, "voice": spec.voice.name if spec.voice else "", "text": spec.text,
            "source": spec.source + (f" + {SOUND_SOURCE}/{spec.sound}" if spec.sound else ""),
        })  # fmt: skip
    return rows
