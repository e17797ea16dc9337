"""The in-process media stage: probe, then the frames path and the audio path at the same time.

frames path: decode + sample frames.  audio path: decode audio -> prosody features -> transcript.
The two paths share nothing, so they run in two threads (PyAV, numpy's FFTs and CTranslate2 release the
GIL in their heavy parts). The Ray engine runs the same stage functions as separate tasks instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.errors import ErrorCode, MediaError
from models.types import AudioFeatures
from pipeline.audio import decode_audio
from pipeline.audio_features import audio_features
from pipeline.config import MediaConfig
from pipeline.frames import sample_frames
from pipeline.probe import probe
from pipeline.types import Audio, Frames, MediaInfo, Transcript

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


class SpeechRecognizer(Protocol):
    """Anything that turns audio into a transcript (`pipeline.transcribe.Transcriber`, or a fake in tests)."""

    def transcribe(self, audio: Audio) -> Transcript: ...


@dataclass(frozen=True)
class DecodedMedia:
    """Everything the media stage learned about one input; what the models stage consumes."""

    info: MediaInfo
    frames: Frames
    audio: Audio
    audio_features: AudioFeatures
    transcript: Transcript
    timings_ms: Mapping[str, float]  # stage name -> wall milliseconds

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no pixel or sample arrays): what `reelsense inspect` prints."""
        frames = self.frames
        return {
            "media": self.info.to_dict(),
            "frames": {
                "count": frames.count,
                "size": list(frames.pixels.shape[1:3]),
                "timestamps_s": [round(float(t), 3) for t in frames.timestamps_s],
                "backend": frames.backend,
                "decoded_count": frames.decoded_count,
                "truncated": frames.truncated,
            },
            "audio": {
                "has_audio": self.audio.has_audio,
                "duration_s": round(self.audio.duration_s, 3),
                "sample_rate": self.audio.sample_rate,
                "source_channels": self.audio.source_channels,
                "features": self.audio_features.to_dict(),
            },
            "transcript": self.transcript.to_dict(),
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.timings_ms.items()},
        }


@dataclass(frozen=True)
class _AudioPath:
    audio: Audio
    features: AudioFeatures
    transcript: Transcript
    timings_ms: Mapping[str, float]


def decode_media(path: str | Path, config: MediaConfig, recognizer: SpeechRecognizer | None) -> DecodedMedia:
    """Probe `path`, then decode frames and audio/speech concurrently.

    `recognizer` None skips speech recognition (the transcript is then empty and has_speech false).
    Raises MediaError for inputs that cannot be used; a missing audio or video track is not an error.
    """
    started = time.perf_counter()
    info, probe_ms = timed(lambda: probe(path, max_pixels=config.max_pixels))
    check_duration(info, config)
    (frames, frames_ms), audio_path = run_concurrently(
        lambda: timed(lambda: sample_frames(path, info, config.frames)),
        lambda: _audio_path(path, info, config, recognizer),
    )
    timings = {"probe": probe_ms, "frames": frames_ms, **audio_path.timings_ms}
    timings["total"] = (time.perf_counter() - started) * 1000
    return DecodedMedia(
        info=info,
        frames=frames,
        audio=audio_path.audio,
        audio_features=audio_path.features,
        transcript=audio_path.transcript,
        timings_ms=timings,
    )


def check_duration(info: MediaInfo, config: MediaConfig) -> None:
    if info.duration_s > config.max_duration_s:
        raise MediaError(
            ErrorCode.MEDIA_TOO_LONG,
            f"the media lasts {info.duration_s:.0f} s, above the limit of {config.max_duration_s:.0f} s",
        )


def run_concurrently(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run the frames path and the audio path in two threads; raise the first failure.

    Both are waited for before raising, so no thread is left decoding a file the caller may delete.
    """
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="media") as pool:
        first_job, second_job = pool.submit(first), pool.submit(second)
        errors = [first_job.exception(), second_job.exception()]
    for error in errors:
        if error is not None:
            raise error
    return first_job.result(), second_job.result()


def decode_audio_path(
    path: str | Path, info: MediaInfo, config: MediaConfig
) -> tuple[tuple[Audio, AudioFeatures], dict[str, float]]:
    """Decode the audio track and its prosody features (the model-free part of the audio path)."""
    audio, audio_ms = timed(
        lambda: decode_audio(path, info, config.audio, max_duration_s=config.max_duration_s)
    )
    features, features_ms = timed(lambda: audio_features(audio))
    return (audio, features), {"audio": audio_ms, "audio_features": features_ms}


def _audio_path(
    path: str | Path, info: MediaInfo, config: MediaConfig, recognizer: SpeechRecognizer | None
) -> _AudioPath:
    (audio, features), decode_timings = decode_audio_path(path, info, config)
    transcript, transcribe_ms = Transcript.silent(), 0.0
    if recognizer is not None and audio.has_audio:
        transcript, transcribe_ms = timed(lambda: recognizer.transcribe(audio))
    return _AudioPath(
        audio=audio,
        features=features,
        transcript=transcript,
        timings_ms={**decode_timings, "transcribe": transcribe_ms},
    )


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """`work()` and how long it took, in milliseconds."""
    started = time.perf_counter()
    result = work()
    return result, (time.perf_counter() - started) * 1000
