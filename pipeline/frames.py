"""Frames stage: choose sample times, decode them with a backend, return upright square RGB frames.

Backends sit behind one small interface (`FrameBackend`): given sorted target times, return the nearest
decoded frames already scaled to the size this module asks for. This module owns everything that does not
depend on the decoder: when to sample, what size to decode to, rotation, crop/pad, and retrying a damaged
file over the part that actually decodes. Memory is bounded by the number of samples, not the video length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from core.errors import ErrorCode, MediaError
from pipeline.config import FrameConfig, ResizeMode
from pipeline.types import Frames, MediaInfo

# A stream that stops decoding before this fraction of its declared duration is treated as damaged and
# re-sampled over what is there, so samples stay spread over the real content. A backend whose decode
# budget ran out reports the same way (end_s where it stopped), so the budget bounds the work to twice it.
TRUNCATION_FRACTION = 0.9


@dataclass(frozen=True)
class DecodedSamples:
    """What a backend returns: (T, h, w, 3) uint8 frames as decoded (not yet rotated or cropped)."""

    pixels: list[npt.NDArray[np.uint8]]
    times_s: list[float]  # presentation time of each frame, relative to the media start
    decoded_count: int  # frames the decoder produced to find these
    end_s: float | None  # time of the last frame when the stream ran out before the last target


class FrameBackend(Protocol):
    name: str
    applies_rotation: bool  # the decoder itself turns frames upright (decord2 does, PyAV does not)

    def decode(
        self, info: MediaInfo, targets_s: npt.NDArray[np.float64], width: int, height: int
    ) -> DecodedSamples:
        """Decode the frame nearest each target time (ascending, seconds from media start).

        Frames come back scaled to width x height; upright only if the backend `applies_rotation`.
        """
        ...


def get_backend(config: FrameConfig) -> FrameBackend:
    """The configured decoder; imported lazily so an optional backend costs nothing when unused."""
    if config.backend == "pyav":
        from pipeline.decode_pyav import PyAVBackend

        return PyAVBackend(seek_gap_s=config.seek_gap_s, budget_pixels=config.decode_budget_pixels)
    if config.backend == "decord":
        from pipeline.decode_decord import DecordBackend

        return DecordBackend()
    raise MediaError(ErrorCode.INVALID_SOURCE, f"unknown frame backend {config.backend!r}: pyav or decord")


def sample_times(duration_s: float, config: FrameConfig) -> npt.NDArray[np.float64]:
    """Target times in seconds: centres of `num_frames` equal bins (fewer for short clips: at most one per
    `min_spacing_s`, at least `min_frames`), or every 1/fps capped at max_frames."""
    if duration_s <= 0:
        return np.zeros((1,), dtype=np.float64)  # unknown duration: at least the first frame
    if config.fps is not None and config.fps > 0:
        count = int(np.floor(duration_s * config.fps))
        if 0 < count <= config.max_frames:
            return (np.arange(count, dtype=np.float64) + 0.5) / config.fps
        count = max(1, min(count, config.max_frames))
    else:
        count = max(1, config.num_frames)
        if config.min_spacing_s:
            by_spacing = max(config.min_frames, int(np.floor(duration_s / config.min_spacing_s)))
            count = min(count, by_spacing)
    return (np.arange(count, dtype=np.float64) + 0.5) * (duration_s / count)


def sample_frames(path: str | Path, info: MediaInfo, config: FrameConfig) -> Frames:
    """Sample frames from the video at `path` (already probed into `info`).

    Returns Frames with pixels (T, size, size, 3) uint8, upright, and timestamps (T,) in seconds.
    Audio-only media gives T == 0. A damaged file gives the frames that decode, `truncated=True`.
    """
    if info.video is None:
        return Frames.empty(config.size, config.backend)
    backend = get_backend(config)
    video = info.video
    width, height = scaled_size(video.display_width, video.display_height, config.size, config.resize)
    rotation = 0 if backend.applies_rotation else video.rotation
    if rotation in (90, 270):
        width, height = height, width  # decode in stream orientation, rotate after scaling (cheaper)
    targets = sample_times(video.duration_s, config)
    decoded = backend.decode(info, targets, width, height)
    truncated = False
    if decoded.end_s is not None and decoded.end_s < TRUNCATION_FRACTION * video.duration_s:
        # The container promised more than is there: spread the samples over what actually decodes.
        truncated = True
        retry = backend.decode(info, sample_times(decoded.end_s, config), width, height)
        decoded = DecodedSamples(
            retry.pixels, retry.times_s, decoded.decoded_count + retry.decoded_count, retry.end_s
        )
    if not decoded.pixels:
        raise MediaError(ErrorCode.DECODE_FAILED, f"no video frame could be decoded from {path}")
    return _assemble(decoded, rotation, config, backend.name, truncated)


def _assemble(
    decoded: DecodedSamples, rotation: int, config: FrameConfig, backend: str, truncated: bool
) -> Frames:
    """Drop repeats (short clips have fewer frames than samples), rotate upright, crop/pad to square."""
    keep: list[int] = []
    for index, time_s in enumerate(decoded.times_s):
        if not keep or time_s > decoded.times_s[keep[-1]]:
            keep.append(index)
    pixels = np.empty((len(keep), config.size, config.size, 3), dtype=np.uint8)
    for row, index in enumerate(keep):
        upright = np.rot90(decoded.pixels[index], rotation // 90) if rotation else decoded.pixels[index]
        pixels[row] = fit_square(upright, config.size, config.resize)
    return Frames(
        pixels=pixels,
        timestamps_s=np.asarray([decoded.times_s[i] for i in keep], dtype=np.float64),
        backend=backend,
        decoded_count=decoded.decoded_count,
        truncated=truncated,
    )


def scaled_size(width: int, height: int, size: int, mode: ResizeMode) -> tuple[int, int]:
    """Size that keeps the aspect ratio and covers ("crop") or fits inside ("pad") a size x size square."""
    if width <= 0 or height <= 0:
        return size, size
    scale = size / min(width, height) if mode == "crop" else size / max(width, height)
    new_w = max(1, round(width * scale))
    new_h = max(1, round(height * scale))
    if mode == "crop":  # rounding must never leave a side short of the square...
        return max(new_w, size), max(new_h, size)
    return min(new_w, size), min(new_h, size)  # ...nor, when padding, past it


def fit_square(image: npt.NDArray[np.uint8], size: int, mode: ResizeMode) -> npt.NDArray[np.uint8]:
    """Centre-crop or letterbox (black) an (h, w, 3) image that is already scaled to size x size."""
    height, width = image.shape[:2]
    if mode == "crop" or (height >= size and width >= size):
        top = max(0, (height - size) // 2)
        left = max(0, (width - size) // 2)
        image = image[top : top + size, left : left + size]
        height, width = image.shape[:2]
        if height == size and width == size:
            return image
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top : top + height, left : left + width] = image
    return canvas
