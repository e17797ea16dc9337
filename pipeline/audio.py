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

from pipeline.config import AudioConfig
from pipeline.container import decode_stream, open_container
from pipeline.errors import ErrorCode, MediaError
from pipeline.types import Audio, MediaInfo


def decode_audio(path: str | Path, info: MediaInfo, config: AudioConfig) -> Audio:
    """Decode, downmix and resample the first audio track.

    Returns samples (N,) float32 aligned to the media start: a track that starts late is padded with
    silence, so sample k is at k / sample_rate seconds, the same clock as frame timestamps.
    """
    if info.audio is None:
        return Audio.empty(config.sample_rate)
    max_samples = int(config.max_duration_s * config.sample_rate)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    first_time: float | None = None
    with open_container(path) as container:
        stream = container.streams.audio[0]
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=config.sample_rate)
        for frame in decode_stream(container, stream):
            assert isinstance(frame, av.AudioFrame)
            if first_time is None and frame.time is not None:
                first_time = float(frame.time)
            for out in resampler.resample(frame):
                total += _append(chunks, out, max_samples - total)
            if total >= max_samples:
                break
        else:
            for out in resampler.resample(None):  # flush what the resampler still holds
                total += _append(chunks, out, max_samples - total)
    if not chunks:
        raise MediaError(
            ErrorCode.DECODE_FAILED, f"the {info.audio.codec} audio track has no decodable sample"
        )
    lead = _leading_silence(first_time, info.start_time_s, config.sample_rate)
    samples = np.concatenate([np.zeros(lead, dtype=np.float32), *chunks]) if lead else np.concatenate(chunks)
    np.clip(samples, -1.0, 1.0, out=samples)  # lossy codecs overshoot full scale slightly
    return Audio(samples=samples, sample_rate=config.sample_rate, source_channels=info.audio.channels)


def _append(chunks: list[npt.NDArray[np.float32]], frame: av.AudioFrame, room: int) -> int:
    if room <= 0:
        return 0
    data = frame.to_ndarray().reshape(-1)[:room].astype(np.float32, copy=False)
    chunks.append(data)
    return int(data.size)


def _leading_silence(first_time: float | None, start_s: float, sample_rate: int) -> int:
    if first_time is None:
        return 0
    return max(0, round((first_time - start_s) * sample_rate))
