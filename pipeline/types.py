"""Typed, frozen results passed between pipeline stages.

Every stage returns one of these; nothing untyped (no dicts of maybe-None) crosses a stage boundary.
Arrays are numpy; shapes are given in each docstring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class VideoStreamInfo:
    codec: str
    width: int  # coded width, before rotation
    height: int
    rotation: int  # display-matrix angle, counter-clockwise: 0/90/180/270; np.rot90(px, rotation // 90)
    nominal_fps: float  # what the container declares (average or guessed rate); 0.0 if unknown
    real_fps: float  # measured from packet presentation timestamps; 0.0 if not measurable
    vfr: bool  # presentation-timestamp deltas vary: frame index / fps does not give time
    keyframe_interval_s: float  # median GOP length seen in the probed packets; 0.0 if unknown
    declared_frames: int  # what the container claims; never used to index frames
    duration_s: float  # the stream's own duration (may exceed what decodes in a damaged file)
    pix_fmt: str

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


@dataclass(frozen=True)
class AudioStreamInfo:
    codec: str
    sample_rate: int
    channels: int
    layout: str


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` found in a file, without decoding it."""

    path: str
    container: str  # FFmpeg demuxer name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    size_bytes: int
    duration_s: float  # 0.0 when the container cannot tell
    start_time_s: float  # first presentation time; stages report times relative to it
    bit_rate: int
    video: VideoStreamInfo | None
    audio: AudioStreamInfo | None

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["has_video"] = self.has_video
        data["has_audio"] = self.has_audio
        if self.video is not None:
            data["video"]["display_width"] = self.video.display_width
            data["video"]["display_height"] = self.video.display_height
        return data


@dataclass(frozen=True)
class Frames:
    """Sampled, resized RGB frames.

    pixels: (T, H, W, 3) uint8, rotation already applied; T may be 0 (no video stream).
    timestamps_s: (T,) float64 presentation times in seconds from the media's start, ascending.
    """

    pixels: npt.NDArray[np.uint8]
    timestamps_s: npt.NDArray[np.float64]
    backend: str
    decoded_count: int  # frames the decoder produced to get these (the cost; bounded by seeking)
    truncated: bool = False  # the stream ended before its declared duration (damaged file)

    @property
    def count(self) -> int:
        return int(self.pixels.shape[0])

    @classmethod
    def empty(cls, size: int, backend: str) -> Frames:
        return cls(
            pixels=np.zeros((0, size, size, 3), dtype=np.uint8),
            timestamps_s=np.zeros((0,), dtype=np.float64),
            backend=backend,
            decoded_count=0,
        )


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1].

    samples: (N,) float32 at `sample_rate`; N == 0 when the media has no audio track.
    """

    samples: npt.NDArray[np.float32]
    sample_rate: int
    source_channels: int  # channels in the original track (6 for 5.1), 0 without audio

    @property
    def has_audio(self) -> bool:
        return self.samples.size > 0

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate if self.sample_rate else 0.0

    @classmethod
    def empty(cls, sample_rate: int) -> Audio:
        return cls(samples=np.zeros((0,), dtype=np.float32), sample_rate=sample_rate, source_channels=0)


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class TranscriptSegment:
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """Speech in the audio track. Empty text and no segments when nothing was said (music, silence)."""

    text: str
    language: str | None  # ISO 639-1 code, None when there is no speech
    language_probability: float
    language_source: str  # "config", "detected", "fallback" (detection below confidence), or "none"
    segments: tuple[TranscriptSegment, ...]
    # Pooled Whisper encoder output, (D,) float32, kept so the audio encoder need not run Whisper again.
    encoder_embedding: npt.NDArray[np.float32] | None = field(default=None, compare=False)

    @property
    def has_speech(self) -> bool:
        return bool(self.segments)

    @classmethod
    def silent(cls) -> Transcript:
        return cls(text="", language=None, language_probability=0.0, language_source="none", segments=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": self.language_probability,
            "language_source": self.language_source,
            "has_speech": self.has_speech,
            "segments": [
                {
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "text": s.text,
                    "words": [asdict(w) for w in s.words],
                }
                for s in self.segments
            ],
        }


@dataclass(frozen=True)
class LocalMedia:
    """A source made available as a local file. `downloaded` files live in a temp dir owned by fetch."""

    source: str  # what the user gave (path or URL)
    path: Path
    downloaded: bool
    size_bytes: int
    content_type: str | None = None
