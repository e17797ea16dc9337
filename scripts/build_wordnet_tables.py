"""Build `models/data/wordnet/{imagenet,nouns}.json` from Debian's WordNet 3.0 (models/wordnet.py reads them).

Input: the WordNet 3.0 database of Debian's `wordnet-base` + `wordnet-sense-index` (/usr/share/wordnet),
read with nltk's WordNetCorpusReader. Debian ships no `lexnames` file (nltk needs it to name each synset's
lexicographer file), so the 45 names of WordNet 3.0's lexnames(5WN) are written beside a copy of the
database in a private temp dir: nltk only opens corpus files under a root listed in `nltk.data.path`, and
it would refuse symlinks that resolve outside it.

Output (deterministic: sorted keys, no timestamps; a rerun gives identical bytes):
- `imagenet.json`: the 1000 ImageNet-1k classes in `models/data/imagenet_classes.txt` order: WordNet id,
  offset, lemmas, one hypernym path (nearest first; at each step the data file's first-listed hypernym),
  lexname, the gloss's first clause. The WordNet ids come from timm's `imagenet_synsets.txt` (an
  installed timm, or `--timm-wheel` pointing at a downloaded wheel), else from the existing
  `imagenet.json` (they were extracted once from timm 1.0.31; matching lemma lists alone is ambiguous for
  91 classes). Each id's lemmas are checked against imagenet_classes.txt.
- `nouns.json`: common English nouns -> their most frequent sense (ties: the first physical one), as a
  parent-pointer tree of synsets (each synset's first-listed hypernym), plus the noun exception list
  (geese -> goose) for those nouns.

Run: `python -m scripts.build_wordnet_tables [--wordnet-dir /usr/share/wordnet] [--out models/data/wordnet]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
DEFAULT_OUT = REPO / "models" / "data" / "wordnet"
CLASSES_FILE = REPO / "models" / "data" / "imagenet_classes.txt"
TIMM_SYNSETS = "timm/data/_info/imagenet_synsets.txt"
# lexnames(5WN) of WordNet 3.0, in file-number order (00..44).
LEXNAMES = (
    *("adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact"),
    *("noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling"),
    *("noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person"),
    *("noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation"),
    *("noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change"),
    *("verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact"),
    *("verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social"),
    *("verb.stative", "verb.weather", "adj.ppl"),
)
SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
# A noun is kept unless another part of speech of the same word is clearly more frequent in the tagged
# SemCor counts ("green" adj 52 vs noun 7; "fly" verb 58 vs noun 9): other > max(2 x noun, 10). The floor
# keeps nouns whose counts are all small ("wrench": verb 7, noun 0).
OTHER_POS_RATIO = 2
OTHER_POS_FLOOR = 10
GLOSS_CHARS = 120


@contextmanager
def open_wordnet(wordnet_dir: Path) -> Iterator[Any]:
    """nltk's WordNet reader over a private copy of `wordnet_dir` with a `lexnames` file added."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            # This *is* WordNet 3.0: no mapping to nltk's downloaded `wordnet` corpus (which is absent).
            return None

    with tempfile.TemporaryDirectory(prefix="wordnet-") as tmp:
        root = Path(tmp)
        for name in WordNetCorpusReader._FILES:
            if name != "lexnames":
                shutil.copyfile(wordnet_dir / name, root / name)
        (root / "lexnames").write_text(
            "".join(
                f"{i:02d}\t{name}\t{SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
                for i, name in enumerate(LEXNAMES)
            )
        )
        nltk.data.path.append(str(root))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "multilingual functions are not available": not needed
                reader = _Reader(str(root), None)
            if reader.get_version() != "3.0":
                raise SystemExit(f"{wordnet_dir} is WordNet {reader.get_version()}, expected 3.0")
            yield reader
        finally:
            nltk.data.path.remove(str(root))


def _label(synset: Any) -> str:
    return str(synset.lemmas()[0].name()).replace("_", " ")


class _Tree:
    """Each noun synset's first hypernym in the order the data file lists them (the lexicographers' main
    one). nltk keeps pointers in a set, so its hypernyms() order changes with the hash seed: not usable."""

    def __init__(self, wn: Any, wordnet_dir: Path) -> None:
        self.wn = wn
        self.data = (wordnet_dir / "data.noun").read_bytes()
        self._parents: dict[int, int | None] = {}

    def parent(self, synset: Any) -> Any | None:
        """The first-listed hypernym or instance hypernym of `synset`; None at the root."""
        offset = synset.offset()
        if offset not in self._parents:
            self._parents[offset] = self._first_hypernym(offset)
        found = self._parents[offset]
        return None if found is None else self.wn.synset_from_pos_and_offset("n", found)

    def _first_hypernym(self, offset: int) -> int | None:
        # wndb(5WN): offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [symbol offset pos st]...
        fields = self.data[offset : self.data.index(b"\n", offset)].split()
        start = 4 + 2 * int(fields[3], 16)
        pointers = fields[start + 1 : start + 1 + 4 * int(fields[start])]
        for symbol, target, pos in zip(pointers[0::4], pointers[1::4], pointers[2::4], strict=True):
            if symbol in (b"@", b"@i") and pos == b"n":
                return int(target)
        return None

    def path(self, synset: Any) -> list[str]:
        """Labels of the hypernyms of `synset`, nearest first, up to the root (entity)."""
        labels = []
        node = self.parent(synset)
        while node is not None:
            labels.append(_label(node))
            node = self.parent(node)
        return labels


def _gloss(synset: Any) -> str:
    first = str(synset.definition()).split(";")[0].strip()
    return first if len(first) <= GLOSS_CHARS else first[: GLOSS_CHARS - 3].rstrip() + "..."


def _timm_wnids(wheel: Path | None, previous: Path) -> tuple[list[str], str]:
    if wheel is not None:
        with zipfile.ZipFile(wheel) as archive:
            version = wheel.name.split("-")[1]  # timm-1.0.31-py3-none-any.whl
            return archive.read(TIMM_SYNSETS).decode().split(), f"timm {version}: {TIMM_SYNSETS}"
    try:
        from importlib import metadata, resources

        text = (resources.files("timm") / "data" / "_info" / "imagenet_synsets.txt").read_text()
        return text.split(), f"timm {metadata.version('timm')}: {TIMM_SYNSETS}"
    except ModuleNotFoundError:
        pass
    if previous.is_file():
        table = json.loads(previous.read_text(encoding="utf-8"))
        return [c["wnid"] for c in table["classes"]], table["wnid_source"]
    raise SystemExit(f"no WordNet ids: install timm, pass --timm-wheel, or keep {previous}")


def imagenet_table(wn: Any, tree: _Tree, wnids: list[str], wnid_source: str) -> dict[str, Any]:
    rows = [line.split("\t") for line in CLASSES_FILE.read_text(encoding="utf-8").splitlines()]
    if len(wnids) != len(rows) or len(rows) != 1000:
        raise SystemExit(f"{len(wnids)} WordNet ids for {len(rows)} classes, expected 1000 of each")
    classes = []
    for wnid, (name, lemmas) in zip(wnids, rows, strict=True):
        synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
        names = [str(lemma.name()).replace("_", " ") for lemma in synset.lemmas()]
        if ", ".join(names) != lemmas or names[0] != name:
            raise SystemExit(f"{wnid} is {names}, but imagenet_classes.txt says {lemmas!r}")
        classes.append(
            {
                "wnid": wnid,
                "offset": synset.offset(),
                "lemmas": names,
                "path": tree.path(synset),
                "lexname": synset.lexname(),
                "gloss": _gloss(synset),
            }
        )
    return {"source": "WordNet 3.0 (Princeton University)", "wnid_source": wnid_source, "classes": classes}


def _count(wn: Any, word: str, pos: str) -> int:
    """SemCor tag count of `word` in part of speech `pos` (of its base forms, for verbs and adjectives)."""
    bases = [word] if pos == "n" else wn._morphy(word, pos)
    return sum(
        lemma.count()
        for base in bases
        for synset in wn.synsets(base, pos)
        for lemma in synset.lemmas()
        if lemma.name().lower() == base
    )


def _most_frequent_sense(tree: _Tree, word: str, synsets: list[Any]) -> Any:
    """The sense with the highest tag count of `word`; among equal counts (often all 0: "wrench" the injury,
    the twist and the tool), the first physical one, since videos mostly name things; else WordNet's first."""
    counts = [sum(lemma.count() for lemma in s.lemmas() if lemma.name().lower() == word) for s in synsets]
    tied = [s for s, count in zip(synsets, counts, strict=True) if count == max(counts)]
    return next((s for s in tied if "physical entity" in tree.path(s)), tied[0])


def _common_noun(wn: Any, tree: _Tree, word: str) -> Any | None:
    """The most frequent sense of `word` if it is kept as a common noun, else None (see OTHER_POS_*)."""
    synsets = wn.synsets(word, "n")
    if not synsets:
        return None
    first = _most_frequent_sense(tree, word, synsets)
    if not any(lemma.name() == word for lemma in first.lemmas()):
        return None  # a proper noun first ("china" -> China): not a common noun
    noun = _count(wn, word, "n")
    if "_" in word and noun == 0:
        return None  # collocations only when tagged: keeps the table small
    other = max(_count(wn, word, pos) for pos in ("v", "a", "s", "r"))
    if other > max(OTHER_POS_RATIO * noun, OTHER_POS_FLOOR):
        return None
    return first


def nouns_table(wn: Any, tree: _Tree, wordnet_dir: Path) -> dict[str, Any]:
    nouns: dict[str, Any] = {}
    for word in sorted(wn.all_lemma_names("n")):
        if word.replace("_", "").isalpha() and word.isascii():
            synset = _common_noun(wn, tree, word)
            if synset is not None:
                nouns[word.replace("_", " ")] = synset
    # Every synset on the kept nouns' paths, by offset; each row: [label, parent index, lexname index].
    needed: dict[int, Any] = {}
    for synset in nouns.values():
        node = synset
        while node is not None and node.offset() not in needed:
            needed[node.offset()] = node
            node = tree.parent(node)
    order = sorted(needed)
    index = {offset: i for i, offset in enumerate(order)}
    lexnames = sorted({needed[o].lexname() for o in order})
    rows = []
    for offset in order:
        parent = tree.parent(needed[offset])
        rows.append(
            [_label(needed[offset]), -1 if parent is None else index[parent.offset()],
             lexnames.index(needed[offset].lexname())]
        )  # fmt: skip
    exceptions = {}
    for line in (wordnet_dir / "noun.exc").read_text(encoding="utf-8").splitlines():
        inflected, *bases = line.split()
        base = next((b.replace("_", " ") for b in bases if b.replace("_", " ") in nouns), None)
        if base is not None and inflected.replace("_", " ") not in nouns:
            exceptions[inflected.replace("_", " ")] = base
    return {
        "source": "WordNet 3.0 (Princeton University)",
        "lexnames": lexnames,
        "synsets": rows,
        "nouns": {word: index[synset.offset()] for word, synset in nouns.items()},
        "exceptions": exceptions,
    }


def write_json(path: Path, table: dict[str, Any]) -> int:
    text = json.dumps(table, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", type=Path, default=DEFAULT_WORDNET_DIR, help="WordNet 3.0 dict dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON tables")
    parser.add_argument("--timm-wheel", type=Path, default=None, help="a timm wheel to take the ids from")
    args = parser.parse_args(argv)
    wnids, wnid_source = _timm_wnids(args.timm_wheel, DEFAULT_OUT / "imagenet.json")
    args.out.mkdir(parents=True, exist_ok=True)
    with open_wordnet(args.wordnet_dir) as wn:
        tree = _Tree(wn, args.wordnet_dir)
        for name, table in (
            ("imagenet.json", imagenet_table(wn, tree, wnids, wnid_source)),
            ("nouns.json", nouns_table(wn, tree, args.wordnet_dir)),
        ):
            size = write_json(args.out / name, table)
            print(f"{args.out / name}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
