"""Probe: what a media file holds (container, streams, duration, rotation, frame rate), cheaply.

Reads the container header, scans a bounded number of video packets (no decoding) to measure the real
frame rate and whether it is variable, and decodes the first video frame to read its display matrix
and prove the stream decodes at all. Cost is bounded by `MAX_SCAN_PACKETS`, not the video's length.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.error
import numpy as np

from core.errors import ErrorCode, MediaError
from pipeline.container import open_container
from pipeline.types import AudioStreamInfo, MediaInfo, VideoStreamInfo

MAX_SCAN_PACKETS = 600  # ~20 s at 30 fps: enough to see a frame-rate pattern, cheap on a 25-min video
MAX_PACKETS_TO_FIRST_FRAME = 300  # a stream that decodes nothing in this many packets is broken
VFR_SPREAD = 0.2  # (p95 - p5) of frame durations over their median above this: variable frame rate
# Frames above this many pixels are refused before anything is decoded: a decoder holds up to 16
# reference frames of that size, so a tiny file at 16000x16000 asks for gigabytes. 8K UHD (4 x 4K).
MAX_PIXELS = 7680 * 4320

# FFmpeg demuxers that read single pictures, not videos.
_IMAGE_DEMUXERS = {"image2", "image2pipe", "webp", "apng"}
_STILL_CODECS = {"mjpeg", "png", "bmp", "tiff", "webp", "jpeg2000", "jpegls", "gif", "ppm", "pgm", "qoi"}


def probe(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> MediaInfo:
    """Describe the media at `path`. Raises MediaError for empty, unreadable or still-image files, and
    FRAME_TOO_LARGE (from the header, before decoding a frame) for video frames above `max_pixels`."""
    path = Path(path)
    size = _file_size(path)
    try:
        return _probe(path, size, max_pixels)
    except av.error.FFmpegError as exc:  # demuxing failed past the header (not one packet's decode)
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise MediaError(
            ErrorCode.INVALID_MEDIA, f"the file cannot be read past its header ({reason})"
        ) from exc


def _probe(path: Path, size: int, max_pixels: int) -> MediaInfo:
    with open_container(path) as container:
        video_stream = container.streams.video[0] if container.streams.video else None
        audio_stream = container.streams.audio[0] if container.streams.audio else None
        if video_stream is None and audio_stream is None:
            raise MediaError(ErrorCode.NO_MEDIA_STREAMS, "the file has neither a video nor an audio stream")
        demuxer = container.format.name
        if video_stream is not None and _is_image_demuxer(demuxer):
            raise MediaError(ErrorCode.NOT_A_VIDEO, f"a still image ({demuxer}), not a video")
        start_s = container.start_time / av.time_base if container.start_time is not None else 0.0
        duration_s = _duration(container, video_stream, audio_stream)
        if video_stream is not None:
            _check_pixels(video_stream, max_pixels)
        video = (
            _probe_video(container, video_stream, audio_stream is None, duration_s) if video_stream else None
        )
        return MediaInfo(
            path=str(path),
            container=demuxer,
            size_bytes=size,
            duration_s=duration_s,
            start_time_s=max(start_s, 0.0),
            bit_rate=int(container.bit_rate or 0),
            video=video,
            audio=_probe_audio(audio_stream) if audio_stream else None,
        )


def _file_size(path: Path) -> int:
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise MediaError(ErrorCode.NOT_FOUND, f"no such file: {path}") from exc
    if not path.is_file():
        raise MediaError(ErrorCode.INVALID_SOURCE, f"not a regular file: {path}")
    if stat.st_size == 0:
        raise MediaError(ErrorCode.EMPTY_FILE, f"the file is empty (0 bytes): {path}")
    return stat.st_size


def _check_pixels(stream: av.VideoStream, max_pixels: int) -> None:
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width * height > max_pixels:
        raise MediaError(
            ErrorCode.FRAME_TOO_LARGE,
            f"video frames of {width}x{height} ({width * height} pixels) are above the limit of "
            f"{max_pixels} pixels",
        )


def _is_image_demuxer(name: str) -> bool:
    return any(part in _IMAGE_DEMUXERS or part.endswith("_pipe") for part in name.split(","))


def _probe_video(
    container: av.container.InputContainer, stream: av.VideoStream, video_only: bool, container_s: float
) -> VideoStreamInfo:
    codec = stream.codec_context.name
    times, keyframes, first_frame_rotation = _scan_video(container, stream)
    if video_only and len(times) <= 1 and codec in _STILL_CODECS:
        raise MediaError(ErrorCode.NOT_A_VIDEO, f"a still image ({codec}), not a video")
    real_fps, vfr = _frame_rate_pattern(times)
    nominal = stream.average_rate or stream.guessed_rate
    fmt = stream.codec_context.format
    return VideoStreamInfo(
        codec=codec,
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        rotation=first_frame_rotation,
        nominal_fps=float(nominal) if nominal else 0.0,
        real_fps=real_fps,
        vfr=vfr,
        keyframe_interval_s=_keyframe_interval(keyframes, times),
        declared_frames=int(stream.frames or 0),
        duration_s=_stream_duration(stream) or container_s,
        pix_fmt=fmt.name if fmt is not None else "",
    )


def _scan_video(
    container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[list[float], list[float], int]:
    """Presentation times of the first packets, those of keyframes, and the first frame's rotation.

    Rotation is FFmpeg's display-matrix angle, counter-clockwise, normalised to 0/90/180/270:
    `np.rot90(pixels, rotation // 90)` turns a decoded frame upright.
    """
    time_base = stream.time_base or Fraction(1, 1)
    times: list[float] = []
    keyframes: list[float] = []
    rotation: int | None = None
    failures = 0
    for packet in container.demux(stream):
        if packet.pts is not None and packet.size:
            times.append(float(packet.pts * time_base))
            if packet.is_keyframe:
                keyframes.append(times[-1])
        if rotation is None:
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                failures += 1
                decoded = []
            if decoded:
                rotation = round(decoded[0].rotation / 90.0) * 90 % 360
        if rotation is None and len(times) + failures >= MAX_PACKETS_TO_FIRST_FRAME:
            break
        if rotation is not None and len(times) >= MAX_SCAN_PACKETS:
            break
    if rotation is None:
        raise MediaError(
            ErrorCode.DECODE_FAILED,
            f"the {stream.codec_context.name} video stream has no decodable frame "
            f"({failures} packets failed to decode)",
        )
    return times, keyframes, rotation


def _keyframe_interval(keyframes: list[float], times: list[float]) -> float:
    """Median seconds between keyframes in the scanned packets; with one keyframe, the scanned span
    (the GOP is at least that long); 0.0 when unknown."""
    if len(keyframes) >= 2:
        return round(float(np.median(np.diff(sorted(keyframes)))), 4)
    if len(keyframes) == 1 and len(times) >= 2:
        return round(max(times) - min(times), 4)
    return 0.0


def _frame_rate_pattern(times: list[float]) -> tuple[float, bool]:
    """(real fps, variable?) from packet presentation times; packets arrive in decode order, so sort."""
    if len(times) < 3:
        return 0.0, False
    ordered = np.unique(np.asarray(times, dtype=np.float64))
    deltas = np.diff(ordered)
    deltas = deltas[deltas > 0]
    if deltas.size < 2:
        return 0.0, False
    span = float(ordered[-1] - ordered[0])
    real_fps = (ordered.size - 1) / span if span > 0 else 0.0
    median = float(np.median(deltas))
    p5, p95 = np.percentile(deltas, [5, 95])
    return round(real_fps, 3), bool((p95 - p5) / median > VFR_SPREAD)


def _duration(
    container: av.container.InputContainer,
    video: av.VideoStream | None,
    audio: av.AudioStream | None,
) -> float:
    """Container duration, else the longest stream's own duration, else 0.0 (unknown)."""
    if container.duration is not None and container.duration > 0:
        return float(container.duration / av.time_base)
    return max((_stream_duration(s) for s in (video, audio) if s is not None), default=0.0)


def _stream_duration(stream: av.VideoStream | av.AudioStream) -> float:
    if stream.duration is None or stream.time_base is None:
        return 0.0
    return float(stream.duration * stream.time_base)


def _probe_audio(stream: av.AudioStream) -> AudioStreamInfo:
    ctx = stream.codec_context
    layout = ctx.layout
    return AudioStreamInfo(
        codec=ctx.name,
        sample_rate=int(ctx.sample_rate or 0),
        channels=int(layout.nb_channels) if layout is not None else int(ctx.channels or 0),
        layout=layout.name if layout is not None else "",
    )
