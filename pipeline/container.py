"""Opening media with PyAV and decoding a stream robustly: the two things every PyAV stage does.

Containers are always used as context managers (unclosed PyAV containers leak, PyAV#1117), and a damaged
packet is skipped rather than ending the stream, so a truncated or partly corrupt file decodes what is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import av.error

from pipeline.errors import ErrorCode, MediaError

MAX_BAD_PACKETS_IN_A_ROW = 64  # a damaged stretch longer than this ends the stream


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a file with FFmpeg, turning its failures into a typed error."""
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FileNotFoundError as exc:
        raise MediaError(ErrorCode.NOT_FOUND, f"no such file: {path}") from exc
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise MediaError(
            ErrorCode.INVALID_MEDIA,
            f"not a media file FFmpeg can read ({reason}); it may be truncated (an mp4 without its "
            "moov atom) or not audio/video at all",
        ) from exc


def decode_stream(
    container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Frames of `stream` from the current position; undecodable packets are skipped, not fatal.

    Demuxing ends with an empty packet whose decode flushes the decoder, so the last frames come out too.
    """
    bad_in_a_row = 0
    for packet in container.demux(stream):
        try:
            decoded = packet.decode()
        except av.error.FFmpegError:
            bad_in_a_row += 1
            if bad_in_a_row > MAX_BAD_PACKETS_IN_A_ROW:
                return
            continue
        bad_in_a_row = 0
        for frame in decoded:
            if isinstance(frame, av.VideoFrame | av.AudioFrame):  # not subtitles
                yield frame
