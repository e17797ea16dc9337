"""Audio stage: the first audio track as mono float32 at a fixed rate (16 kHz for Whisper), via PyAV.

FFmpeg's resampler downmixes any channel layout (stereo, 5.1, 7.1) and resamples in one pass while
decoding, so memory is the output (64 KB per second at 16 kHz) and not the decoded source. A file without
an audio track is a normal result: `Audio.empty`, never an error.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.audio.resampler
import numpy as np
import numpy.typing as npt

from core.errors import ErrorCode, MediaError
from pipeline.config import AudioConfig
from pipeline.container import decode_stream, open_container
from pipeline.types import Audio, MediaInfo


def decode_audio(
    path: str | Path, info: MediaInfo, config: AudioConfig, *, max_duration_s: float | None = None
) -> Audio:
    """Decode, downmix and resample the first audio track.

    Returns samples (N,) float32 aligned to the media start: a track that starts late is padded with
    silence, so sample k is at k / sample_rate seconds, the same clock as frame timestamps.
    `config.max_duration_s` cuts the audio there (padding included); `max_duration_s` refuses media whose
    decoded timestamps or padding go past it (MEDIA_TOO_LONG) as decoding goes: the header's duration
    is only an estimate (an mp3 that changes bit rate reports a fraction of its length).
    """
    if info.audio is None:
        return Audio.empty(config.sample_rate)
    rate = config.sample_rate
    max_samples = int(config.max_duration_s * rate)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0  # samples so far, the leading silence included
    lead: int | None = None
    with open_container(path) as container:
        stream = container.streams.audio[0]
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in decode_stream(container, stream):
            assert isinstance(frame, av.AudioFrame)
            time_s = float(frame.time) - info.start_time_s if frame.time is not None else None
            if time_s is not None:  # the track's own clock, its late start included
                _check_time(time_s, max_duration_s)
            if lead is None:  # the silence before the first frame counts against both limits
                lead = total = min(max(0, round((time_s or 0.0) * rate)), max_samples)
            for out in resampler.resample(frame):
                total += _append(chunks, out, max_samples - total)
            if total >= max_samples:
                break
        else:
            for out in resampler.resample(None):  # flush what the resampler still holds
                total += _append(chunks, out, max_samples - total)
    if not chunks and not lead:
        raise MediaError(
            ErrorCode.DECODE_FAILED, f"the {info.audio.codec} audio track has no decodable sample"
        )
    samples = np.zeros(total, dtype=np.float32)  # one allocation: the silence is already there
    if chunks:
        np.concatenate(chunks, out=samples[lead or 0 :])
    np.clip(samples, -1.0, 1.0, out=samples)  # lossy codecs overshoot full scale slightly
    return Audio(samples=samples, sample_rate=rate, source_channels=info.audio.channels)


def _check_time(time_s: float, max_duration_s: float | None) -> None:
    if max_duration_s is not None and time_s > max_duration_s:
        raise MediaError(
            ErrorCode.MEDIA_TOO_LONG,
            f"the audio goes on past {max_duration_s:.0f} s (the limit), whatever the header says",
        )


def _append(chunks: list[npt.NDArray[np.float32]], frame: av.AudioFrame, room: int) -> int:
    if room <= 0:
        return 0
    data = frame.to_ndarray().reshape(-1)[:room].astype(np.float32, copy=False)
    chunks.append(data)
    return int(data.size)
