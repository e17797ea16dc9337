"""`Analyzer` end to end on clips the tests make: category and sentiment accuracy, custom labels,
missing modalities, bad input, and the fixed Prediction JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from models.labels import custom_labels
from models.sentiment import TextSentiment
from models.types import SENTIMENTS
from pipeline.analyze import Analyzer, AnalyzerConfig
from pipeline.config import FrameConfig, MediaConfig
from tests.fresh_interpreter import modules_loaded_by
from tests.heldout_clips import OFF_TOPIC_CLIPS, PICTURE_CLIPS, SPEECH_CLIPS
from tests.labelled_clips import CLIPS, LabelledClip, make_clip

# --- Held-out accuracy (tests/heldout_clips.py: clips never used to tune anything) ------------------
# Measured values and the bounds asserted, in clips. Each bound is the measured count minus one clip, so
# one more miss fails. They move when the models or the vision bridge change: re-measure with
#   python -m pytest -q -s tests/test_analyze.py -k heldout
# (prints every clip's answer and the counts; copy them here, keep the "minus one").
# Measured 2026-12-02 on CPU, main after the hierarchy vision bridge (d9492f3). Before it (90f330f) speech
# was 6/17: the synthetic pattern behind the speech clips read as "art & crafts" to the old bridge and
# outvoted clear speech; the tuned clips never showed it because their speech repeats the taxonomy prompts'
# words. Vision alone is still weak on these pictures (the moon and Hubble read as nematodes, a daisy
# next to "hen-of-the-woods", a fungus, so all of them as animals). Re-measured for 8 frames and
# unexpanded transcripts (fusion constants refitted): pictures 3/9 -> 2/9, because o_flower's off-topic
# words ("thanks for stopping by ... comments") now read as comedy; everything else the same.
SPEECH_CATEGORY_MEASURED = 11  # of 17 speech clips over a blank pattern: the transcript should decide
PICTURE_CATEGORY_MEASURED = 2  # of 9 picture clips (6 silent, 3 with off-topic speech): vision decides
PICTURE_ANSWERS_MEASURED = 5  # distinct answers over those 9 clips (a constant answer gives one)
SENTIMENT_MEASURED = 15  # of the 20 clips with speech (17 + 3 off-topic); lexicon-only got 14
SPEECH_CATEGORY_MIN = SPEECH_CATEGORY_MEASURED - 1
PICTURE_CATEGORY_MIN = PICTURE_CATEGORY_MEASURED - 1
PICTURE_ANSWERS_MIN = PICTURE_ANSWERS_MEASURED - 1
SENTIMENT_MIN = SENTIMENT_MEASURED - 1
# Sentiment must also do at least as well as the lexicon-only head (VADER + Pattern features, no
# embeddings) on the same sentences, computed in the test, not a constant.

PREDICTION_FIELDS = {
    "id", "source", "status", "error", "media", "category", "sentiment", "transcript", "segments", "evidence",
    "model", "timings_ms",
}  # fmt: skip


@pytest.fixture(scope="session")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    cache = tmp_path_factory.mktemp("model-cache")
    media = MediaConfig(frames=FrameConfig(num_frames=8))
    # Two clips at once (the held-out table below runs them in two threads): the Ray actor's setting.
    return Analyzer(AnalyzerConfig(media=media, device="cpu", cache_dir=str(cache), concurrent_clips=2))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("labelled")


@pytest.fixture(scope="session")
def heldout(analyzer: Analyzer, clip_dir: Path) -> dict[str, Any]:
    """Every held-out clip analysed once (the two tests share the off-topic ones); prints the table."""
    clips = SPEECH_CLIPS + PICTURE_CLIPS + OFF_TOPIC_CLIPS
    # Two clips at a time on the one analyzer (models run one thread each): both cores of a small machine
    # are busy, and an answer cannot depend on which clip it shared the models with.
    with ThreadPoolExecutor(analyzer.config.concurrent_clips) as pool:
        paths = list(pool.map(lambda clip: str(make_clip(clip, clip_dir)), clips))
        answers = dict(zip((c.name for c in clips), pool.map(analyzer.analyze, paths), strict=True))
    print()
    for clip in clips:
        prediction = answers[clip.name]
        assert prediction.status == "ok", prediction.error
        print(f"{clip.name:12} {prediction.category.label:18} {prediction.sentiment.label:9} "
              f"(want {clip.category}, {clip.sentiment})")  # fmt: skip
    return answers


def _score(heldout: dict[str, Any], clips: tuple[LabelledClip, ...]) -> list[tuple[LabelledClip, Any]]:
    return [(clip, heldout[clip.name]) for clip in clips]


def test_heldout_speech_clips_category_and_sentiment(heldout: dict[str, Any]) -> None:
    scored = _score(heldout, SPEECH_CLIPS + OFF_TOPIC_CLIPS)
    category_hits = sum(p.category.label == c.category for c, p in scored if c in SPEECH_CLIPS)
    sentiment_hits = sum(p.sentiment.label == c.sentiment for c, p in scored)
    lexicon = TextSentiment(embed=None).probs([c.speech for c, _ in scored])  # what was said, exactly
    lexicon_labels = [SENTIMENTS[int(row.argmax())] for row in lexicon]
    lexicon_hits = sum(label == c.sentiment for label, (c, _) in zip(lexicon_labels, scored, strict=True))
    print(f"speech category {category_hits}/{len(SPEECH_CLIPS)}; sentiment {sentiment_hits}/{len(scored)} "
          f"(lexicon-only {lexicon_hits}/{len(scored)})")  # fmt: skip
    assert category_hits >= SPEECH_CATEGORY_MIN
    assert sentiment_hits >= max(SENTIMENT_MIN, lexicon_hits)


def test_heldout_vision_alone_names_the_pictures(heldout: dict[str, Any]) -> None:
    scored = _score(heldout, PICTURE_CLIPS + OFF_TOPIC_CLIPS)
    hits = [c.category for c, p in scored if p.category.label == c.category]
    answers = {p.category.label for _, p in scored}
    print(f"picture category {len(hits)}/{len(scored)}, {len(answers)} distinct answers")
    assert not any(p.has_speech for c, p in scored if c in PICTURE_CLIPS)
    assert len(hits) >= PICTURE_CATEGORY_MIN and len(answers) >= PICTURE_ANSWERS_MIN


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
    # The picture is scikit-image's coffee cup: EfficientNet's own top classes say so (no bridge involved).
    visual = [c["name"] for c in data["evidence"]["visual_classes"]]
    assert "espresso" in visual[:3], visual
    moments = data["evidence"]["moments"]
    assert moments and {m["modality"] for m in moments} <= {"vision", "text"}
    assert all(0 <= m["time_s"] <= media["duration_s"] for m in moments)
    assert [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)
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
    by_modality = prediction.sentiment.by_modality
    assert set(by_modality) == {"text", "audio", "prior"}
    assert by_modality["text"] is None and by_modality["audio"] is None
    prior = by_modality["prior"]
    assert set(prior) == {"negative", "neutral", "positive"} and abs(sum(prior.values()) - 1) < 1e-6
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
        "from pipeline.config import FrameConfig, MediaConfig\n"
        "media = MediaConfig(frames=FrameConfig(num_frames=4))\n"
        f"config = AnalyzerConfig(media=media, device='cpu', cache_dir={str(tmp_path)!r})\n"
        f"prediction = Analyzer(config).analyze({str(clip)!r})\n"
        "assert prediction.status == 'ok' and prediction.media.has_audio, prediction.error\n"
    )
    assert modules_loaded_by(code, ("numba", "llvmlite", "librosa")) == []


def test_warm_up_analyses_a_generated_clip(analyzer: Analyzer) -> None:
    prediction = analyzer.warm_up()
    assert prediction.status == "ok" and prediction.media is not None
    assert prediction.media.has_video and prediction.media.has_audio and prediction.category is not None
