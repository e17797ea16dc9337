"""Frame sampling: the right frames at the right times, upright, bounded, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import FrameConfig
from pipeline.frames import fit_square, sample_frames, sample_times, scaled_size
from pipeline.probe import probe
from tests import media_factory as mf
from tests.conftest import VFR_TIMES

BACKENDS = ["pyav", "decord"]


def _true_index(time_s: float, times: list[float]) -> int:
    """The frame on screen at `time_s` given each frame's presentation time."""
    return int(np.argmin(np.abs(np.asarray(times) - time_s)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "name",
    ["h264_aac.mp4", "h264_long_gop.mp4", "h264_short_gop.mp4", "av1.mp4", "vp9_opus.webm", "hevc_51.mp4"],
)
def test_each_sampled_frame_is_the_frame_shown_at_its_timestamp(media, name: str, backend: str) -> None:
    path = media(name)
    info = probe(path)
    frames = sample_frames(path, info, FrameConfig(num_frames=16, backend=backend, min_spacing_s=None))
    assert frames.pixels.shape == (16, 224, 224, 3) and frames.pixels.dtype == np.uint8
    fps = info.video.nominal_fps
    for pixels, time_s in zip(frames.pixels, frames.timestamps_s, strict=True):
        assert mf.read_index(pixels) == round(time_s * fps), f"wrong frame at {time_s:.3f}s"
    # Uniform sampling: one frame per equal bin, spread over the whole duration.
    expected = sample_times(info.video.duration_s, FrameConfig(num_frames=16, min_spacing_s=None))
    assert np.all(np.abs(frames.timestamps_s - expected) <= 0.5 / fps + 1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_frames", [8, 16])
def test_variable_frame_rate_uses_presentation_timestamps(media, backend: str, num_frames: int) -> None:
    path = media("vfr.mp4")
    info = probe(path)
    assert info.video.vfr
    config = FrameConfig(num_frames=num_frames, backend=backend, min_spacing_s=None)
    frames = sample_frames(path, info, config)
    decoded = [mf.read_index(pixels) for pixels in frames.pixels]
    # The frames nearest each target time, in order, each once (16 targets over 14 frames repeat some;
    # repeats are dropped): a sampler that picks by index/fps or always frame 0 gives another list.
    targets = sample_times(info.video.duration_s, config)
    nearest = [_true_index(target, VFR_TIMES) for target in targets]
    assert decoded == [index for i, index in enumerate(nearest) if i == 0 or index != nearest[i - 1]]
    for index, time_s in zip(decoded, frames.timestamps_s, strict=True):
        assert abs(VFR_TIMES[index] - time_s) < 0.03, "timestamp must be the frame's own PTS, not index/fps"


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_from_display_matrix_is_applied(media, backend: str) -> None:
    path = media("portrait_rot90.mp4")
    info = probe(path)
    assert info.video.rotation == 90
    assert (info.video.display_width, info.video.display_height) == (240, 320)
    frames = sample_frames(path, info, FrameConfig(num_frames=4, backend=backend, resize="pad"))
    for pixels, time_s in zip(frames.pixels, frames.timestamps_s, strict=True):
        # Padding keeps the portrait frame whole: black bars left and right, bands horizontal again.
        assert pixels[:, :20].max() < 30 and pixels[:, -20:].max() < 30
        content = pixels[:, 40:-40]
        assert mf.read_index(content) == round(time_s * 25)


def test_fixed_rate_sampling_is_capped(media) -> None:
    path = media("h264_short_gop.mp4")  # 10 s
    info = probe(path)
    two_fps = sample_frames(path, info, FrameConfig(fps=2.0, max_frames=64))
    assert two_fps.count == 20
    assert np.allclose(np.diff(two_fps.timestamps_s), 0.5, atol=0.05)
    capped = sample_frames(path, info, FrameConfig(fps=25.0, max_frames=10))
    assert capped.count == 10
    assert capped.timestamps_s[0] < 1.0 and capped.timestamps_s[-1] > 9.0


def test_seeking_bounds_decoding_on_short_gop_and_reuses_long_gop(media) -> None:
    short = media("h264_short_gop.mp4")  # keyframe every 12 frames, 250 frames
    frames = sample_frames(short, probe(short), FrameConfig(num_frames=4))
    assert frames.decoded_count < 80, "four samples with short GOPs must not decode the whole video"
    long_gop = media("h264_long_gop.mp4")  # one keyframe: every sample needs decoding from the start
    frames = sample_frames(long_gop, probe(long_gop), FrameConfig(num_frames=16))
    assert frames.decoded_count <= 260, "a long GOP is decoded once, not once per sample"


def test_short_clip_gives_each_frame_once(tmp_path) -> None:
    path = tmp_path / "five_frames.mp4"
    mf.write_video(path, duration_s=0.2, fps=25)  # 5 frames, 16 samples asked for
    frames = sample_frames(path, probe(path), FrameConfig(num_frames=16, min_spacing_s=None))
    assert frames.count == 5
    assert [mf.read_index(p) for p in frames.pixels] == [0, 1, 2, 3, 4]
    assert np.all(np.diff(frames.timestamps_s) > 0)


@pytest.mark.parametrize(("duration_s", "expected"), [(3.0, 6), (1.0, 4), (20.0, 16), (0.3, 4)])
def test_short_clips_get_fewer_frames(duration_s: float, expected: int) -> None:
    times = sample_times(duration_s, FrameConfig(num_frames=16, min_spacing_s=0.5, min_frames=4))
    assert len(times) == expected
    assert np.all(np.diff(times) > 0) and times[0] > 0 and times[-1] < duration_s  # bin centres
    assert len(sample_times(duration_s, FrameConfig(num_frames=16, min_spacing_s=None))) == 16


def test_audio_only_media_has_no_frames(media) -> None:
    path = media("audio_only.mp4")
    frames = sample_frames(path, probe(path), FrameConfig())
    assert frames.count == 0 and frames.pixels.shape == (0, 224, 224, 3)


@pytest.mark.parametrize(
    ("size", "mode", "expected"),
    [
        ((1920, 1080), "crop", (398, 224)),
        ((1080, 1920), "crop", (224, 398)),
        ((1920, 1080), "pad", (224, 126)),
        ((100, 100), "crop", (224, 224)),
    ],
)
def test_scaled_size_keeps_aspect(size, mode, expected) -> None:
    assert scaled_size(*size, 224, mode) == expected


def test_fit_square_crops_centre_and_pads_black() -> None:
    wide = np.zeros((224, 398, 3), dtype=np.uint8)
    wide[:, 199] = 255  # the centre column survives a centre crop
    cropped = fit_square(wide, 224, "crop")
    assert cropped.shape == (224, 224, 3) and cropped[:, 112].min() == 255
    padded = fit_square(np.full((126, 224, 3), 200, dtype=np.uint8), 224, "pad")
    assert padded.shape == (224, 224, 3)
    assert padded[0].max() == 0 and padded[-1].max() == 0 and padded[112].min() == 200
