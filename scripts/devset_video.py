"""Turn one picture and one sound into a short mp4 (H.264 + AAC) whose picture pans and zooms slightly.

Frames are cut from the picture with Pillow (a crop window that shrinks and drifts) and piped to ffmpeg as
raw RGB, so the motion is exact and the same on every run; ffmpeg runs single-threaded with bitexact flags so
the files are byte-identical between runs on one ffmpeg version.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFont
from PIL.ImageDraw import Draw

WIDTH, HEIGHT = 320, 240  # output frame size, pixels
FPS = 10  # output frame rate
CANVAS = (480, 360)  # the picture is laid out on this 4:3 canvas before the crops (leaves room to zoom)
SAMPLE_RATE = 22050  # AAC output, mono
SPEECH_START_S = 0.3  # silence before the speech starts
EMOJI_SIZE = 109  # Noto Color Emoji is a bitmap font with this one strike


@dataclass(frozen=True)
class ClipAudio:
    """What the clip sounds like: a speech WAV, a real sound file (looped/cut), or silence (both None)."""

    speech: Path | None = None
    sound: Path | None = None


def emoji_picture(chars: str, font_path: Path) -> Image.Image:
    """The emoji drawn by Noto Color Emoji at its native size, centred on a light canvas."""
    font = ImageFont.truetype(str(font_path), EMOJI_SIZE)
    glyph = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    Draw(glyph).text((80, 80), chars, font=font, embedded_color=True, anchor="mm")
    box = glyph.getbbox()
    if box is None:
        raise ValueError(f"the emoji font draws nothing for {chars!r}")
    return _on_canvas(glyph.crop(box), fill=0.6)


def photo_picture(data: bytes) -> Image.Image:
    """A photo (any Pillow format, e.g. webp) fitted onto the canvas; transparent parts become white."""
    with Image.open(io.BytesIO(data)) as image:
        return _on_canvas(image.convert("RGBA"), fill=0.95)


def black_picture() -> Image.Image:
    """The black screen under the sentiment sentences."""
    return Image.new("RGB", CANVAS, (0, 0, 0))


def _on_canvas(image: Image.Image, fill: float) -> Image.Image:
    """Scale `image` to cover `fill` of the canvas (keeping its shape) and paste it in the middle."""
    canvas = Image.new("RGB", CANVAS, (245, 245, 240))
    scale = min(CANVAS[0] * fill / image.width, CANVAS[1] * fill / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.LANCZOS)
    canvas.paste(resized, ((CANVAS[0] - size[0]) // 2, (CANVAS[1] - size[1]) // 2), resized)
    return canvas


def frames(picture: Image.Image, n_frames: int, direction: int) -> list[bytes]:
    """`n_frames` raw RGB frames: a crop that zooms from 100% to 85% of the canvas and drifts sideways.

    direction: 0-3 picks which corner the window drifts towards, so clips do not all move alike.
    """
    out = []
    dx, dy = ((1, 1), (-1, 1), (1, -1), (-1, -1))[direction % 4]
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        scale = 1.0 - 0.15 * t
        w, h = CANVAS[0] * scale, CANVAS[1] * scale
        left = (CANVAS[0] - w) / 2 * (1 + dx * t)
        top = (CANVAS[1] - h) / 2 * (1 + dy * t)
        crop = picture.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
        out.append(crop.tobytes())
    return out


def encode(picture: Image.Image, audio: ClipAudio, duration_s: float, direction: int, out: Path) -> None:
    """Write `out` (mp4): the moving picture for `duration_s` seconds with `audio` under it."""
    n_frames = round(duration_s * FPS)
    video_in = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-"]
    if audio.speech is not None:
        delay_ms = round(SPEECH_START_S * 1000)
        audio_in, audio_filter = ["-i", str(audio.speech)], f"adelay={delay_ms}:all=1,apad"
    elif audio.sound is not None:
        audio_in, audio_filter = ["-stream_loop", "-1", "-i", str(audio.sound)], "volume=0.7,apad"
    else:
        audio_in, audio_filter = ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=mono"], "anull"
    tmp = out.with_name(out.stem + ".part.mp4")
    cmd = [
        _ffmpeg(), "-y", "-v", "error", "-threads", "1", *video_in, *audio_in,
        "-filter:a", audio_filter, "-map", "0:v", "-map", "1:a", "-t", f"{n_frames / FPS:.3f}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-threads", "1",
        "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        str(tmp),
    ]  # fmt: skip
    raw = b"".join(frames(picture, n_frames, direction))
    done = subprocess.run(cmd, input=raw, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed for {out}: {done.stderr.decode(errors='replace')[-400:]}")
    tmp.replace(out)  # whole files only: an interrupted build leaves no half-written clip behind


def wav_duration(path: Path) -> float:
    """Length of a WAV file in seconds (espeak-ng and festival write plain PCM WAV)."""
    import wave

    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise RuntimeError("ffmpeg not found: run `make devset` (it installs the dev set's Debian packages)")
    return path
