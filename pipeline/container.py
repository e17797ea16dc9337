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

from core.errors import ErrorCode, MediaError

MAX_BAD_PACKETS_IN_A_ROW = 64  # a damaged stretch longer than this ends the stream

# The demuxers media may be opened with: containers and raw streams that read the one file they are given.
# Left out on purpose: every demuxer that opens other files or URLs named inside the file (hls, dash,
# concat/ffconcat, sdp/rtp, webm_dash_manifest, mov's external references are off by default), devices,
# and image2's file-name patterns (image2 stays, with `pattern_type=none`: the name is taken literally).
# A demuxer's name is a comma list ("mov,mp4,m4a,3gp,3g2,mj2"): FFmpeg accepts it when any part is here.
ALLOWED_DEMUXERS = (
    "mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "ogg", "nut", "mxf", "dv",
    "rm", "ivf", "obu", "h264", "hevc", "m4v", "mpegvideo", "av1", "mjpeg", "yuv4mpegpipe",
    "mp3", "wav", "w64", "flac", "aac", "ac3", "eac3", "aiff", "caf", "amr", "au",
    "gif", "apng", "image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe",
)  # fmt: skip
# AVFormatContext options for every open: the allow-list above, the file protocol only (nothing over
# the network, no pipes or fds), and no file-name patterns.
OPEN_OPTIONS = {
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "protocol_whitelist": "file",
    "pattern_type": "none",
}


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open one media file with FFmpeg (allowed demuxers, the file protocol), typed errors on failure.

    A playlist, concat list or anything else that would make FFmpeg open further files fails here as
    invalid_media: uploads and downloads are media files, never references to other files.
    """
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore", container_options=dict(OPEN_OPTIONS))
    except av.error.FileNotFoundError as exc:
        raise MediaError(ErrorCode.NOT_FOUND, f"no such file: {path}") from exc
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise MediaError(
            ErrorCode.INVALID_MEDIA,
            f"not a media file FFmpeg can read ({reason}); it may be truncated (an mp4 without its "
            "moov atom), not audio/video at all, or a format that is refused here (playlists, concat "
            "lists and other files that name further files)",
        ) from exc


def decode_stream(
    container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Frames of `stream` from the current position; undecodable packets are skipped, not fatal.

    Demuxing ends with an empty packet whose decode flushes the decoder, so the last frames come out too.
    """
    bad_in_a_row = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError:  # the demuxer itself gave up: what was decoded so far stands
            return
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
