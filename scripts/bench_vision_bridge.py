"""Vision-only category accuracy of the ImageNet bridge, per class-term style (bare names vs WordNet terms).

Pictures made here with no download: scikit-image's bundled photos (in its wheel) and emoji rendered with
Pillow from Debian's fonts-noto-color-emoji (a bitmap font: size 109 only, embedded colour). Each has one
true label of LABELS; a picture is right when the top label of models/zero_shot.py's hierarchy bridge
(the real EfficientNet-Lite0 and the bridge's text encoder) is that label. A measurement, not a test, and
nothing to tune on: 66 pictures.

Run: `python -m scripts.bench_vision_bridge [--styles bare wordnet] [--model SPEC] [--show-errors]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

LABELS = (
    *("animals", "food", "plants", "vehicles", "clothes", "tools", "buildings", "sports", "music"),
    "household objects",
)
# Only pictures that ship in scikit-image's wheel (others, like "eagle", are fetched from the network).
SKIMAGE_PICTURES = {
    "chelsea": "animals",
    "horse": "animals",
    "coffee": "food",
    "rocket": "vehicles",
    "grass": "plants",
    "clock": "household objects",
}
EMOJI = {
    "animals": "🐶🐱🐘🦒🐸🐧",
    "food": "🍕🍔🍎🍞🍰🍜",
    "plants": "🌵🌻🌳🌷🌿🌴",
    "vehicles": "🚗🚲🚂🚌⛵🚜",
    "clothes": "👕👗👖🧥🧦👒",
    "tools": "🔨🔧🪛🪚🪓🧰",
    "buildings": "🏠🏰🏢⛪🏭🏯",
    "sports": "⚽🏀🏈🎾⚾🏓",
    "music": "🎸🎹🎺🥁🎻🎷",
    "household objects": "🛋🛏🪑🧹🪣🧺",
}
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_SIZE = 109  # the one size of Noto Color Emoji's bitmaps
SIDE = 224  # frames are this square; the encoder centre-crops anyway


def skimage_pictures() -> list[tuple[str, str, npt.NDArray[np.uint8]]]:
    import skimage.data

    out = []
    for name, label in SKIMAGE_PICTURES.items():
        picture = np.asarray(getattr(skimage.data, name)())
        if picture.dtype == bool:
            picture = np.where(picture, 0, 255).astype(np.uint8)  # a black silhouette on white
        if picture.ndim == 2:
            picture = np.repeat(picture[..., None], 3, axis=2)
        out.append((name, label, _square(picture[..., :3].astype(np.uint8))))
    return out


def emoji_pictures(font_path: Path = EMOJI_FONT) -> list[tuple[str, str, npt.NDArray[np.uint8]]]:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), EMOJI_SIZE)
    out = []
    for label, chars in EMOJI.items():
        for char in chars:
            canvas = Image.new("RGB", (SIDE, SIDE), "white")
            draw = ImageDraw.Draw(canvas)
            left, top, right, bottom = draw.textbbox((0, 0), char, font=font, embedded_color=True)
            origin = ((SIDE - (right - left)) // 2 - left, (SIDE - (bottom - top)) // 2 - top)
            draw.text(origin, char, font=font, embedded_color=True)
            pixels = np.asarray(canvas, dtype=np.uint8)
            if pixels.min() > 200:
                raise SystemExit(f"{char!r} (U+{ord(char):04X}) did not render with {font_path}")
            out.append((f"U+{ord(char):04X}", label, pixels))
    return out


def _square(picture: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    from PIL import Image

    resized = Image.fromarray(picture).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def main(argv: list[str] | None = None) -> None:
    from models.labels import custom_labels
    from models.text import TextEncoder
    from models.vision import VisionEncoder
    from models.wordnet import imagenet_class_terms, imagenet_class_texts
    from models.zero_shot import (
        ClassHierarchy,
        hierarchy_class_scores,
        imagenet_bridge_scores,
    )
    from pipeline.config import AnalyzerConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["bare", "wordnet"], help="class term styles")
    parser.add_argument("--model", default=AnalyzerConfig().bridge_model, help="the bridge's text encoder")
    parser.add_argument("--show-errors", action="store_true", help="print each wrong picture")
    args = parser.parse_args(argv)
    pictures = skimage_pictures() + emoji_pictures()
    vision, text = VisionEncoder(device="cpu"), TextEncoder(args.model, device="cpu")
    probs = vision.encode(np.stack([p for _, _, p in pictures])).class_probs
    assert probs is not None
    label_space = custom_labels(LABELS).embed(text.encode)
    truth = np.array([LABELS.index(label) for _, label, _ in pictures])
    terms = {"bare": [(name,) for name in imagenet_class_texts("bare")], "wordnet": imagenet_class_terms()}
    for style in args.styles:
        hierarchy = ClassHierarchy.from_class_terms(terms[style])
        term_sims = text.encode(list(hierarchy.terms)) @ label_space.T
        class_scores = hierarchy_class_scores(term_sims, hierarchy)
        chosen = imagenet_bridge_scores(probs, class_scores).argmax(axis=1)
        right = chosen == truth
        groups = {"skimage": slice(0, len(SKIMAGE_PICTURES)), "emoji": slice(len(SKIMAGE_PICTURES), None)}
        parts = ", ".join(f"{k} {int(right[s].sum())}/{right[s].size}" for k, s in groups.items())
        print(f"{style:>7}: {right.mean():.3f} ({int(right.sum())}/{right.size}; {parts})")
        if args.show_errors:
            for (name, label, _), guess, ok in zip(pictures, chosen, right, strict=True):
                if not ok:
                    print(f"       {name} ({label}) -> {LABELS[guess]}")


if __name__ == "__main__":
    main()
