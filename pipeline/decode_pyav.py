"""PyAV frame backend: seek when the next sample is far, decode forward when it is near.

Seeking for every sample re-decodes from the previous keyframe each time, which costs more as the number
of samples grows; decoding everything costs the whole video. This backend decodes forward while the next
target is within `gap` seconds and seeks otherwise, and widens `gap` to the keyframe interval it observes
(or to how far back a seek landed), so a long-GOP file is not re-decoded from the same keyframe.
Timestamps come from each frame's presentation time, never from index / nominal fps (correct on VFR).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction

import av
import av.container
import av.error
import numpy as np
import numpy.typing as npt

from pipeline.container import decode_stream, open_container
from pipeline.frames import DecodedSamples
from pipeline.types import MediaInfo

SEEK_OVERSHOOT_RETRIES = 3  # some demuxers (MPEG-TS, AVI without index) land after the target

_Timed = tuple[float, av.VideoFrame]  # a decoded frame and its presentation time in seconds


class PyAVBackend:
    name = "pyav"
    applies_rotation = False

    def __init__(self, seek_gap_s: float = 1.0, budget_pixels: int | None = None) -> None:
        self.seek_gap_s = seek_gap_s
        self.budget_pixels = budget_pixels  # decoded pixels allowed per decode(); None: unbounded

    def decode(
        self, info: MediaInfo, targets_s: npt.NDArray[np.float64], width: int, height: int
    ) -> DecodedSamples:
        with open_container(info.path) as container:
            stream = container.streams.video[0]
            video = info.video
            fps = (video.real_fps or video.nominal_fps) if video else 0.0
            # Decoding forward beats seeking until the next sample is a keyframe interval away; the
            # configured gap is only the guess for streams whose keyframes the probe did not see.
            gap = video.keyframe_interval_s if video and video.keyframe_interval_s > 0 else self.seek_gap_s
            sampler = _Sampler(container, stream, info.start_time_s, fps or 25.0, gap, self.budget_pixels)
            return sampler.run(targets_s, width, height)


class _Sampler:
    """Walks one open container; holds the decode position between targets."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        start_s: float,
        fps: float,
        seek_gap_s: float,
        budget_pixels: int | None = None,
    ) -> None:
        self.container = container
        self.pixels_left = budget_pixels  # decode work left; the stream "ends" when it runs out
        self.stream = stream
        self.start_s = start_s
        self.time_base = stream.time_base or Fraction(1, 1)
        self.frame_period = 1.0 / fps
        self.gap = max(seek_gap_s, 2 * self.frame_period)
        self.can_seek = True
        self.decoded = 0
        self.last_time: float | None = None  # time of the newest decoded frame
        self.last_key: float | None = None  # newest keyframe in the current forward run
        # The frames around the target being looked for: the newest one before it, the first at/after it.
        self.before: _Timed | None = None
        self.after: _Timed | None = None

    def run(self, targets: npt.NDArray[np.float64], width: int, height: int) -> DecodedSamples:
        pixels: list[npt.NDArray[np.uint8]] = []
        times: list[float] = []
        converted: tuple[float, npt.NDArray[np.uint8]] | None = None
        frames: Iterator[_Timed] | None = None
        for target in (float(t) for t in targets):
            if frames is None or self._should_seek(target):
                frames = self._seek(target) if frames is not None or target > self.gap else self._frames()
            chosen = self._nearest(frames, target)
            if chosen is None:  # the stream ended before this target
                return DecodedSamples(pixels, times, self.decoded, end_s=self.last_time)
            time_s, frame = chosen
            if converted is None or converted[0] != time_s:
                rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
                converted = (time_s, np.asarray(rgb, dtype=np.uint8))
            pixels.append(converted[1])
            times.append(time_s)
        return DecodedSamples(pixels, times, self.decoded, end_s=None)

    def _should_seek(self, target: float) -> bool:
        if not self.can_seek or self.last_time is None:
            return False
        if self.after is not None and self.after[0] >= target:
            return False  # already decoded past it
        return target - self.last_time > self.gap

    def _nearest(self, frames: Iterator[_Timed], target: float) -> _Timed | None:
        """The decoded frame nearest `target`, decoding forward as far as needed; None at end of stream."""
        if self.after is None or self.after[0] < target:
            if self.after is not None:
                self.before = self.after
                self.after = None
            for time_s, frame in frames:
                if time_s < target:
                    self.before = (time_s, frame)
                    continue
                self.after = (time_s, frame)
                break
        if self.after is None:
            # End of stream: the last frame still answers a target within one frame period of it.
            if self.before is not None and target - self.before[0] <= 1.5 * self.frame_period:
                return self.before
            return None
        if self.before is not None and target - self.before[0] < self.after[0] - target:
            return self.before
        return self.after

    def _time_of(self, frame: av.VideoFrame) -> float:
        self.decoded += 1
        if frame.pts is not None:
            time_s = float(frame.pts * self.time_base) - self.start_s
        else:  # no timestamp at all (rare, broken muxers): the best we can say is "next frame"
            time_s = (self.last_time or 0.0) + self.frame_period
        if frame.key_frame:
            if self.last_key is not None and time_s > self.last_key:
                self.gap = max(self.gap, time_s - self.last_key)
            self.last_key = time_s
        self.last_time = time_s
        return time_s

    def _frames(self) -> Iterator[_Timed]:
        """(time, frame) from the current demux position."""
        for frame in decode_stream(self.container, self.stream):
            assert isinstance(frame, av.VideoFrame)
            if self.pixels_left is not None:
                self.pixels_left -= frame.width * frame.height
                if self.pixels_left < 0:
                    self.can_seek = False  # out of budget: no more decoding, from here or elsewhere
                    return
            yield self._time_of(frame), frame

    def _seek(self, target: float) -> Iterator[_Timed]:
        """Jump to the keyframe before `target`; learn from where it lands."""
        previous = self.last_time
        back_off = 0.0
        for _ in range(SEEK_OVERSHOOT_RETRIES + 1):
            seek_to = max(0.0, target - back_off)
            try:
                if seek_to > 0:
                    pts = int((seek_to + self.start_s) / self.time_base)
                    self.container.seek(pts, stream=self.stream, backward=True)
                else:  # rewind: container-level 0 is before every stream's start (MPEG-TS starts at ~1.4 s)
                    self.container.seek(0, backward=True)
            except av.error.FFmpegError:
                self.can_seek = False  # unseekable (damaged index): decode forward from here on
                return self._frames()
            self.before = self.after = None
            self.last_key = None
            frames = self._frames()
            first: _Timed | None = next(frames, None)
            if first is None:
                return iter(())
            landed = first[0]
            if previous is not None and landed <= previous:
                # Landed on a keyframe already decoded past: the GOP is longer than `gap`, widen it.
                self.gap = max(self.gap, target - landed)
            overshoot = landed - target
            if overshoot <= 1.5 * self.frame_period or seek_to == 0.0:
                break
            back_off = max(1.0, 2 * max(back_off, overshoot))
        assert first is not None  # the loop runs at least once and returns early on None
        return itertools.chain([first], frames)  # the last landing, even if still past the target
