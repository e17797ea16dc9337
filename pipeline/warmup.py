"""A tiny clip made on the spot, for a warm-up analysis: a service worker analyses it once before it says it
is ready, so no user pays the first call's costs (lazy model parts, first inference allocations, the label
set's and class names' embeddings).

Two seconds of moving colour bars (H.264) with a voice-like hum (AAC): a 140 Hz harmonic tone whose loudness
rises and falls four times a second, like syllables, so every stage of both paths has work to do.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

DURATION_S = 2.0
FPS = 10
SIZE = 128
SAMPLE_RATE = 16_000


def write_warmup_clip(path: Path) -> Path:
    """Write the clip to `path` (an .mp4) and return it."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = SIZE, SIZE, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for index in range(int(DURATION_S * FPS)):
            frame = av.VideoFrame.from_ndarray(_bars(index), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = _hum()
        chunk = audio.codec_context.frame_size or 1024
        for start in range(0, samples.size, chunk):
            piece = np.ascontiguousarray(samples[None, start : start + chunk])
            sound = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
            sound.sample_rate, sound.pts, sound.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(sound))
        container.mux(audio.encode(None))
    return path


def _bars(index: int) -> npt.NDArray[np.uint8]:
    """Eight colour bars shifted by `index` columns: every frame differs."""
    columns = (np.arange(SIZE) + 4 * index) * 8 // SIZE % 8
    palette = np.array([[(c >> 2 & 1) * 255, (c >> 1 & 1) * 255, (c & 1) * 255] for c in range(8)])
    return np.broadcast_to(palette[columns][None], (SIZE, SIZE, 3)).astype(np.uint8)


def _hum() -> npt.NDArray[np.float32]:
    t = np.arange(int(DURATION_S * SAMPLE_RATE)) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * 140.0 * k * t) / k for k in range(1, 8))
    syllables = 0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t)
    return (0.2 * voice * syllables).astype(np.float32)
