"""`Analyzer` end to end on clips the tests make: category and sentiment accuracy, custom labels,
missing modalities, bad input, and the fixed Prediction JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models.labels import custom_labels
from pipeline.analyze import Analyzer, AnalyzerConfig
from pipeline.config import FrameConfig, MediaConfig, TranscribeConfig
from tests.fresh_interpreter import modules_loaded_by
from tests.labelled_clips import CLIPS, make_clip

# Lower bounds, below what this suite measures (see the printed accuracy), to catch regressions.
MIN_CATEGORY_ACCURACY = 0.75
MIN_SENTIMENT_ACCURACY = 0.75

PREDICTION_FIELDS = {
    "id", "source", "status", "error", "media", "category", "sentiment", "transcript", "segments", "evidence",
    "model", "timings_ms",
}  # fmt: skip


@pytest.fixture(scope="session")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    cache = tmp_path_factory.mktemp("model-cache")
    media = MediaConfig(frames=FrameConfig(num_frames=8), transcribe=TranscribeConfig(cache_dir=str(cache)))
    return Analyzer(AnalyzerConfig(media=media, device="cpu"))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("labelled")


def test_labelled_clips_accuracy(analyzer: Analyzer, clip_dir) -> None:
    assert len(CLIPS) >= 20
    category_hits = sentiment_hits = 0
    rows = []
    for clip in CLIPS:
        prediction = analyzer.analyze(str(make_clip(clip, clip_dir)))
        assert prediction.status == "ok", prediction.error
        category_hits += prediction.category.label == clip.category
        sentiment_hits += prediction.sentiment.label == clip.sentiment
        rows.append(f"{clip.name:14} {prediction.category.label:18} {prediction.sentiment.label:9} "
                    f"(want {clip.category}, {clip.sentiment})")  # fmt: skip
    category_accuracy = category_hits / len(CLIPS)
    sentiment_accuracy = sentiment_hits / len(CLIPS)
    print("\n" + "\n".join(rows))
    print(f"category accuracy {category_accuracy:.2f}, sentiment accuracy {sentiment_accuracy:.2f}")
    assert category_accuracy >= MIN_CATEGORY_ACCURACY
    assert sentiment_accuracy >= MIN_SENTIMENT_ACCURACY


def test_prediction_json_has_the_fixed_fields(analyzer: Analyzer, clip_dir) -> None:
    clip = next(c for c in CLIPS if c.name == "espresso")
    data = analyzer.analyze(str(make_clip(clip, clip_dir))).to_dict()
    assert set(data) >= PREDICTION_FIELDS
    json.dumps(data)  # serialisable as is
    assert data["status"] == "ok" and data["error"] is None
    media = data["media"]
    assert media["has_video"] and media["has_audio"] and media["has_speech"]
    assert {"duration_s", "width", "height", "fps", "vfr", "rotation"} <= set(media)
    assert abs(sum(data["category"]["scores"].values()) - 1) < 1e-3 and len(data["category"]["scores"]) == 15
    assert set(data["sentiment"]["scores"]) == {"negative", "neutral", "positive"}
    assert data["sentiment"]["by_modality"]["text"] is not None
    assert "espresso" in data["transcript"]["text"].lower() and data["transcript"]["language"] == "en"
    assert data["segments"] and all(s["end_s"] > s["start_s"] for s in data["segments"])
    assert data["evidence"]["visual_classes"] and data["evidence"]["moments"]
    assert data["model"]["head"] == "zero-shot" and data["model"]["vision"] == "package:efficientnet-lite0"
    assert {"probe", "frames", "vision", "transcribe", "fuse", "total"} <= set(data["timings_ms"])


def test_custom_labels_work_without_retraining(analyzer: Analyzer, clip_dir) -> None:
    labels = custom_labels(["cats", "coffee", "motorcycles", "rockets"])
    expected = {
        "cat_love": "cats",
        "espresso": "coffee",
        "motorbike": "motorcycles",
        "rocket_launch": "rockets",
    }
    for name, want in expected.items():
        clip = next(c for c in CLIPS if c.name == name)
        prediction = analyzer.analyze(str(make_clip(clip, clip_dir)), labels)
        assert prediction.category.label == want
        assert set(prediction.category.scores) == set(labels.names)


def test_music_without_speech_has_no_text_sentiment(analyzer: Analyzer, media) -> None:
    prediction = analyzer.analyze(str(media("vp9_opus.webm")))  # a tone chord, no words
    assert prediction.status == "ok"
    assert not prediction.has_speech and prediction.transcript.text == ""
    assert prediction.sentiment.by_modality["text"] is None  # nothing said is not "neutral"
    assert prediction.sentiment.by_modality["audio"] is not None


def test_video_without_audio(analyzer: Analyzer, media) -> None:
    prediction = analyzer.analyze(str(media("no_audio.mp4")))
    assert prediction.status == "ok" and not prediction.media.has_audio
    assert prediction.sentiment.by_modality == {
        "text": None,
        "audio": None,
        "prior": prediction.sentiment.by_modality["prior"],
    }
    assert prediction.sentiment.label == "neutral"  # no evidence at all: neutral with low confidence
    assert prediction.sentiment.confidence < 0.5


def test_progress_reports_every_stage_in_order(analyzer: Analyzer, clip_dir) -> None:
    clip = make_clip(CLIPS[0], clip_dir)  # one with speech: the transcript stages run
    reported: list[tuple[str, float]] = []
    prediction = analyzer.analyze(str(clip), progress=lambda stage, done: reported.append((stage, done)))
    assert prediction.status == "ok"
    assert [stage for stage, _ in reported] == ["fetch", "probe", "decode", "transcribe", "text", "fuse"]
    fractions = [done for _, done in reported]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1


def test_a_failing_progress_callback_does_not_fail_the_analysis(analyzer: Analyzer, media) -> None:
    def broken(stage: str, done: float) -> None:
        raise RuntimeError("the job store went away")

    assert analyzer.analyze(str(media("vp9_opus.webm")), progress=broken).status == "ok"


def test_bad_input_is_an_error_prediction(analyzer: Analyzer, tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    prediction = analyzer.analyze(str(broken))
    assert prediction.status == "error" and prediction.error.code.value == "invalid_media"
    assert prediction.to_dict()["category"] is None


def test_analyze_command_prints_one_line_per_source(clip_dir, tmp_path) -> None:
    clip = make_clip(next(c for c in CLIPS if c.name == "espresso"), clip_dir)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "analyze", "--device", "cpu", "--frames", "4",
         "--cache-dir", str(tmp_path / "cache"), "--labels", "coffee,cars,cats", str(clip), str(empty)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["ok", "error"]
    assert lines[0]["category"]["label"] == "coffee" and lines[1]["error"]["code"] == "empty_file"
    assert "Traceback" not in done.stderr


def test_analysing_a_clip_compiles_nothing(clip_dir, tmp_path) -> None:
    # numba (librosa's JIT) compiled in every new process: seconds warm, minutes cold on a loaded machine.
    clip = make_clip(next(c for c in CLIPS if c.name == "espresso"), clip_dir)
    code = (
        "from pipeline.analyze import Analyzer, AnalyzerConfig\n"
        "from pipeline.config import FrameConfig, MediaConfig, TranscribeConfig\n"
        f"transcribe = TranscribeConfig(cache_dir={str(tmp_path)!r})\n"
        "media = MediaConfig(frames=FrameConfig(num_frames=4), transcribe=transcribe)\n"
        f"prediction = Analyzer(AnalyzerConfig(media=media, device='cpu')).analyze({str(clip)!r})\n"
        "assert prediction.status == 'ok' and prediction.media.has_audio, prediction.error\n"
    )
    assert modules_loaded_by(code, ("numba", "llvmlite", "librosa")) == []


def test_warm_up_analyses_a_generated_clip(analyzer: Analyzer) -> None:
    prediction = analyzer.warm_up()
    assert prediction.status == "ok" and prediction.media is not None
    assert prediction.media.has_video and prediction.media.has_audio and prediction.category is not None
