"""`Prediction`: the one result type. The CLI prints it, the batch writes it, the service serialises it.

JSON field names are fixed (they are the API); fields may be added, never renamed. A failed source is a
Prediction too (`status: "error"` with its `error`), so every consumer handles one shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from core.errors import ErrorCode, MediaError
from models.types import LabelScore, SegmentResult, SentimentResult
from pipeline.types import MediaInfo, Transcript

Status = Literal["ok", "error"]


@dataclass(frozen=True)
class ModelInfo:
    version: str  # reelsense version
    vision: str  # model specs, as given
    text: str
    speech: str
    head: str  # "zero-shot" for the untrained head, else the checkpoint's name
    labels: str  # where the label set came from

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Prediction:
    id: str
    source: str
    status: Status
    error: MediaError | None = None
    media: MediaInfo | None = None
    has_speech: bool = False
    category: LabelScore | None = None
    sentiment: SentimentResult | None = None
    transcript: Transcript | None = None
    segments: tuple[SegmentResult, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def failed(
        cls, source: str, error: MediaError, *, timings_ms: Mapping[str, float] | None = None
    ) -> Prediction:
        return cls(id=new_id(), source=source, status="error", error=error, timings_ms=timings_ms or {})

    def with_source(self, shown: str) -> Prediction:
        """The same prediction under another name for its source (the service's "upload:clip.mp4" for a
        temporary path it must not reveal), in the error message too."""
        if shown == self.source:
            return self
        error = self.error
        if error is not None:
            error = MediaError(error.code, error.message.replace(self.source, shown))
        return replace(self, source=shown, error=error)

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON object (see README "The result")."""
        return {
            "id": self.id,
            "source": self.source,
            "status": self.status,
            "error": self.error.to_dict() if self.error is not None else None,
            "media": _media_dict(self.media, self.has_speech),
            "category": self.category.to_dict() if self.category else None,
            "sentiment": self.sentiment.to_dict() if self.sentiment else None,
            "transcript": _transcript_dict(self.transcript),
            "segments": [segment.to_dict() for segment in self.segments],
            "evidence": dict(self.evidence),
            "model": self.model.to_dict() if self.model else None,
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.timings_ms.items()},
        }


def new_id() -> str:
    return uuid.uuid4().hex


def internal_error(exc: BaseException) -> MediaError:
    """A bug, reported to the user as a stable code without a traceback."""
    return MediaError(ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"[:500])


def _media_dict(info: MediaInfo | None, has_speech: bool) -> dict[str, Any] | None:
    if info is None:
        return None
    video, audio = info.video, info.audio
    return {
        "duration_s": round(info.duration_s, 3),
        "width": video.display_width if video else None,
        "height": video.display_height if video else None,
        "fps": round(video.real_fps or video.nominal_fps, 3) if video else None,
        "vfr": video.vfr if video else False,
        "rotation": video.rotation if video else 0,
        "has_video": info.has_video,
        "has_audio": info.has_audio,
        "has_speech": has_speech,
        "container": info.container,
        "video_codec": video.codec if video else None,
        "audio_codec": audio.codec if audio else None,
        "audio_channels": audio.channels if audio else 0,
        "size_bytes": info.size_bytes,
    }


def _transcript_dict(transcript: Transcript | None) -> dict[str, Any] | None:
    if transcript is None:
        return None
    return {
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": round(transcript.language_probability, 4),
        "language_source": transcript.language_source,
        "segments": [
            {"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "text": s.text}
            for s in transcript.segments
        ],
    }
