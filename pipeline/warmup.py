"""A tiny clip made on the spot, for a warm-up analysis: a service worker analyses it once before it says it
is ready, so no user pays the first call's costs (lazy model parts, first inference allocations, the label
set's and class names' embeddings).

Two seconds of moving colour bars (H.264) with a chord (AAC). Music, not a voice: Whisper's VAD hears no
speech, so Whisper runs its encoder pass (language detection, the embedding) but decodes nothing. A
voice-like hum made it decode noise for 28 s on a loaded machine, which no warm-up should cost; the text
models are warmed separately (`SpeechEncoder.warm_up`).
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
        samples = _chord()
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


def _chord() -> npt.NDArray[np.float32]:
    """A major (440, 554, 659 Hz)."""
    t = np.arange(int(DURATION_S * SAMPLE_RATE)) / SAMPLE_RATE
    notes = np.sin(2 * np.pi * np.array([440.0, 554.37, 659.26])[:, None] * t[None, :])
    return (0.1 * notes.sum(axis=0)).astype(np.float32)
