"""Make the demo's sample videos with ffmpeg and espeak-ng (no download): `python -m scripts.make_samples`.

- review.mp4: H.264 + AAC, a spoken positive food review (espeak-ng) over a slowly zooming photo of a
  coffee cup (scikit-image's bundled `coffee` picture).
- music_no_speech.webm: VP9 + Opus, a chord with no speech: has_speech must come out false.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

REVIEW_TEXT = (
    "This coffee is absolutely delicious. The espresso is rich and smooth, "
    "and the cafe makes the best cappuccino in town. I love it."
)


def make_samples(out_dir: Path) -> list[Path]:
    """Write the sample files into `out_dir` (skipping those already there); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    review = out_dir / "review.mp4"
    music = out_dir / "music_no_speech.webm"
    if not review.exists():
        with tempfile.TemporaryDirectory() as tmp:
            speech = Path(tmp) / "speech.wav"
            picture = Path(tmp) / "coffee.png"
            _save_picture("coffee", picture)
            _run(_tool("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(speech), REVIEW_TEXT)
            _ffmpeg(
                "-loop", "1", "-framerate", "25", "-i", str(picture), "-i", str(speech), "-shortest",
                "-vf", "zoompan=z='min(zoom+0.001,1.3)':d=1:s=600x400:fps=25,format=yuv420p",
                "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac",
                str(review),
            )  # fmt: skip
    if not music.exists():
        _ffmpeg(
            "-f", "lavfi", "-i", "mandelbrot=size=480x270:rate=25",
            "-f", "lavfi", "-i", "sine=f=262:d=6", "-f", "lavfi", "-i", "sine=f=330:d=6",
            "-filter_complex", "[1:a][2:a]amix=inputs=2[a]", "-map", "0:v", "-map", "[a]", "-t", "6",
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus",
            str(music),
        )  # fmt: skip
    return [review, music]


def _save_picture(name: str, path: Path) -> None:
    """Write one of scikit-image's bundled pictures (shipped in its wheel, no download) as PNG."""
    import skimage.data
    import skimage.io

    picture = getattr(skimage.data, name)()
    picture = picture[0] if isinstance(picture, tuple) else picture  # stereo pairs: the left view
    skimage.io.imsave(path, picture, check_contrast=False)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is missing: run `make sysdeps` (apt-get install {name})")
    return path


def _ffmpeg(*args: str) -> None:
    _run(_tool("ffmpeg"), "-v", "error", "-nostdin", "-y", *args)


def _run(*command: str) -> None:
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("samples"), help="folder for the sample files")
    args = parser.parse_args()
    for path in make_samples(args.out):
        print(path)


if __name__ == "__main__":
    main()
