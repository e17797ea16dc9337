"""Real media for tests, made with PyAV, ffmpeg and espeak-ng.

Every video frame carries its own index, drawn as horizontal bands (one bit per band, most significant
on top) that survive scaling, cropping and lossy compression, so a test can check that the frame a
decoder returned for time t is really the frame shown at t.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

INDEX_BITS = 12  # up to 4095 frames can be told apart
TIME_BASE = Fraction(1, 1000)  # millisecond timestamps: enough to express any VFR pattern we make


def index_pattern(index: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """An upright (height, width, 3) frame that encodes `index` in INDEX_BITS horizontal bands."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    band = height / INDEX_BITS
    for bit in range(INDEX_BITS):
        if index >> (INDEX_BITS - 1 - bit) & 1:
            frame[int(bit * band) : int((bit + 1) * band)] = 255
    return frame


def read_index(frame: npt.NDArray[np.uint8]) -> int:
    """The index encoded by `index_pattern` in an upright (H, W, 3) frame, after any resizing."""
    height = frame.shape[0]
    band = height / INDEX_BITS
    value = 0
    for bit in range(INDEX_BITS):
        top, bottom = int(bit * band), int((bit + 1) * band)
        centre = frame[top + (bottom - top) // 4 : bottom - (bottom - top) // 4, :, :]
        value = value << 1 | int(centre.mean() > 127)
    return value


def write_video(
    path: Path,
    *,
    duration_s: float = 2.0,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    gop: int | None = None,
    frame_times_s: Sequence[float] | None = None,
    audio: npt.NDArray[np.float32] | None = None,
    audio_codec: str = "aac",
    audio_rate: int = 44_100,
    audio_layout: str = "mono",
) -> list[float]:
    """Encode an index-pattern video (and optionally audio); returns each frame's presentation time.

    `frame_times_s` gives explicit (e.g. variable-rate) timestamps; otherwise frames are 1/fps apart.
    `audio` is (channels, samples) or (samples,) float32 at `audio_rate`.
    """
    width, height = size
    times = list(frame_times_s) if frame_times_s is not None else _regular_times(duration_s, fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE  # else the encoder rounds VFR times to 1/fps
        if gop is not None:
            stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = (
                {"preset": "ultrafast", "tune": "zerolatency"} if gop is None else {"preset": "ultrafast"}
            )
        audio_stream = (
            _add_audio(container, audio_codec, audio_rate, audio_layout) if audio is not None else None
        )
        for index, time_s in enumerate(times):
            frame = av.VideoFrame.from_ndarray(index_pattern(index, width, height), format="rgb24")
            frame.pts = round(time_s / TIME_BASE)
            frame.time_base = TIME_BASE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None and audio is not None:
            _encode_audio(container, audio_stream, audio, audio_rate, audio_layout)
    return times


def write_frames_video(
    path: Path,
    frames: Sequence[npt.NDArray[np.uint8]],
    *,
    fps: int,
    audio: npt.NDArray[np.float32] | None = None,
    audio_rate: int = 22_050,
) -> None:
    """Encode given RGB frames (H.264) and optional mono audio (AAC) into an mp4."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        audio_stream = _add_audio(container, "aac", audio_rate, "mono") if audio is not None else None
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None and audio is not None:
            _encode_audio(container, audio_stream, audio, audio_rate, "mono")


def write_audio(
    path: Path,
    samples: npt.NDArray[np.float32],
    *,
    codec: str,
    rate: int = 44_100,
    layout: str = "mono",
    container_format: str | None = None,
) -> None:
    """An audio-only file (wav, flac, mp3, ogg, m4a ...)."""
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = _add_audio(container, codec, rate, layout)
        _encode_audio(container, stream, samples, rate, layout)


def tone(
    duration_s: float, rate: int = 44_100, freqs: Sequence[float] = (440.0,), amp: float = 0.3
) -> npt.NDArray[np.float32]:
    t = np.arange(int(duration_s * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    return (amp * wave).astype(np.float32)


def speech_wav(path: Path, text: str, *, voice: str = "en-us", speed: int = 150) -> Path:
    """Synthesise `text` with espeak-ng into a wav file."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return path


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg command line (for what PyAV does not do simply: remux with metadata, AVI, lavfi)."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
    subprocess.run([binary, "-v", "error", "-nostdin", "-y", *args], check=True)


def _regular_times(duration_s: float, fps: float) -> list[float]:
    return [i / fps for i in range(max(1, round(duration_s * fps)))]


def _add_audio(container: av.container.OutputContainer, codec: str, rate: int, layout: str) -> av.AudioStream:
    stream = container.add_stream(codec, rate=rate)
    stream.layout = layout
    return stream


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    samples: npt.NDArray[np.float32],
    rate: int,
    layout: str,
) -> None:
    channels = av.AudioLayout(layout).nb_channels
    planar = np.atleast_2d(samples).astype(np.float32)
    if planar.shape[0] != channels:
        planar = np.repeat(planar[:1], channels, axis=0)
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, planar.shape[1], chunk):
        piece = np.ascontiguousarray(planar[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
