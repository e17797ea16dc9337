"""Clips of known category and sentiment, made from scikit-image's bundled pictures and espeak-ng speech.

Each clip shows a picture (slowly panning, so it is a real video) or a synthetic pattern while a voice
says something about the topic with a clear feeling. Used by the end-to-end accuracy test, the analysis
benchmark and the fine-tuning tests. Only pictures that ship inside the scikit-image wheel are used
(others would be downloaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from tests import media_factory as mf

FPS = 10
SIZE = (320, 240)


@dataclass(frozen=True)
class LabelledClip:
    name: str
    picture: str | None  # a scikit-image data function name, "matplotlib:<file>", or None (a pattern)
    speech: str  # what a voice says; "" for a clip without audio
    category: str
    sentiment: str  # negative | neutral | positive


CLIPS: tuple[LabelledClip, ...] = (
    LabelledClip("cat_love", "chelsea", "My cat is so adorable. I love how she plays with her toys and sleeps on my lap.", "animals & pets", "positive"),
    LabelledClip("dog_noise", "chelsea", "The dog next door barks all night long. It is awful and I hate it.", "animals & pets", "negative"),
    LabelledClip("horse_ride", "horse", "We fed the horses and the pony at the farm. The animals were wonderful.", "animals & pets", "positive"),
    LabelledClip("espresso", "coffee", "This espresso is delicious. Honestly the best coffee I have ever had.", "food & cooking", "positive"),
    LabelledClip("bad_pasta", "coffee", "The pasta was cold and tasteless and the sauce was burnt. A terrible meal.", "food & cooking", "negative"),
    LabelledClip("recipe", None, "First chop the onions, then add the garlic and the tomatoes to the pan and cook for ten minutes.", "food & cooking", "neutral"),
    LabelledClip("motorbike", "stereo_motorcycle", "This motorcycle rides beautifully. The engine is smooth and powerful, I love it.", "vehicles", "positive"),
    LabelledClip("car_breakdown", "stereo_motorcycle", "My car broke down again on the highway. The engine failed, what a disaster.", "vehicles", "negative"),
    LabelledClip("rocket_launch", "rocket", "The rocket launch was amazing. Incredible engineering and a perfect flight.", "technology", "positive"),
    LabelledClip("slow_phone", None, "This phone is so slow and the battery dies in an hour. A very disappointing gadget.", "technology", "negative"),
    LabelledClip("match_win", None, "What a great match! Our team scored in the last minute and won the championship.", "sports & fitness", "positive"),
    LabelledClip("gym_injury", None, "I hurt my back at the gym during the workout. The training was painful and awful.", "sports & fitness", "negative"),
    LabelledClip("guitar_song", None, "This song is beautiful. The guitar and the drums sound fantastic, I love the band.", "music & dance", "positive"),
    LabelledClip("lecture", None, "Today we will learn how photosynthesis works. Plants turn light, water and carbon dioxide into sugar.", "education & talks", "neutral"),
    LabelledClip("news_report", None, "The government announced new economic measures today, and the parliament will vote next week.", "news", "neutral"),
    LabelledClip("boss_fight", None, "This video game level is so frustrating. The boss fight is impossible and the controls are terrible.", "gaming", "negative"),
    LabelledClip("beach_trip", None, "Our vacation at the beach was wonderful. The hotel was lovely and the sea was warm.", "travel & outdoors", "positive"),
    LabelledClip("lipstick", None, "This lipstick looks gorgeous and my makeup lasts all day. I really love this look.", "beauty & fashion", "positive"),
    LabelledClip("birthday", None, "My kids had a wonderful time at the birthday party with their friends and the baby.", "family & kids", "positive"),
    LabelledClip("watercolor", "colorwheel", "I painted this picture with watercolors and drew the sketch by hand. I am proud of it.", "art & crafts", "positive"),
    LabelledClip("forest_walk", "grass", "The forest, the river and the flowers in the spring are peaceful and green.", "nature", "positive"),
    LabelledClip("flood", None, "The storm flooded the river valley and destroyed the trees. The damage is terrible.", "nature", "negative"),
)  # fmt: skip


SILENT_S = 4.0  # length of a clip without speech


def make_clip(clip: LabelledClip, folder: Path) -> Path:
    """Write `clip` as an H.264/AAC mp4 in `folder` (once); returns its path. Empty speech: no audio track."""
    path = folder / f"{clip.name}.mp4"
    if path.exists():
        return path
    speech = read_mono(mf.speech_wav(folder / f"{clip.name}.wav", clip.speech)) if clip.speech else None
    duration = speech.size / 22_050 + 0.5 if speech is not None else SILENT_S
    frames = _panning_frames(_picture(clip.picture), duration)
    mf.write_frames_video(path, frames, fps=FPS, audio=speech, audio_rate=22_050)
    return path


def read_mono(path: Path) -> npt.NDArray[np.float32]:
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=22_050)
        chunks = [
            out.to_ndarray().reshape(-1) for f in container.decode(audio=0) for out in resampler.resample(f)
        ]
    return np.concatenate(chunks).astype(np.float32)


def _picture(name: str | None) -> npt.NDArray[np.uint8]:
    if name is None:  # a synthetic, colourful pattern: gives the vision prior nothing true to say
        y, x = np.mgrid[0:480, 0:640]
        return np.stack([(x * 255 // 640), (y * 255 // 480), ((x + y) % 256)], axis=-1).astype(np.uint8)
    if name.startswith(("matplotlib:", "sklearn:")):  # pictures in those wheels: no download
        from PIL import Image

        package, file_name = name.split(":", 1)
        if package == "matplotlib":
            from matplotlib import cbook

            with cbook.get_sample_data(file_name) as file:
                return np.asarray(Image.open(file).convert("RGB"))
        from importlib import resources

        with resources.files("sklearn.datasets").joinpath("images", file_name).open("rb") as file:
            return np.asarray(Image.open(file).convert("RGB"))
    import skimage.data

    loaded = getattr(skimage.data, name)()
    image = np.asarray(loaded[0] if isinstance(loaded, tuple) else loaded)  # stereo pairs: the left view
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = (255 * (image > 0)).astype(np.uint8) if image.dtype == bool else image.astype(np.uint8)
    return image


def _panning_frames(picture: npt.NDArray[np.uint8], duration_s: float) -> list[npt.NDArray[np.uint8]]:
    """Frames of a window sliding slowly across the picture, resized to SIZE."""
    width, height = SIZE
    count = max(2, round(duration_s * FPS))
    h, w = picture.shape[:2]
    crop_w, crop_h = int(w * 0.85), int(h * 0.85)
    frames = []
    for i in range(count):
        left = round((w - crop_w) * i / (count - 1))
        top = round((h - crop_h) * i / (count - 1))
        window = picture[top : top + crop_h, left : left + crop_w]
        rows = np.linspace(0, crop_h - 1, height).astype(int)
        cols = np.linspace(0, crop_w - 1, width).astype(int)
        frames.append(np.ascontiguousarray(window[rows][:, cols]))
    return frames
