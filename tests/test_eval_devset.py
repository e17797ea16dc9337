"""The dev-set evaluation: its metrics on hand-made answers, the naive baseline on a real clip, and one
end-to-end run of `scripts.eval_devset` (both systems, real models) on a tiny manifest, then again from
its cache without loading any model that encodes media."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from scripts.eval_metrics import (
    Answer,
    DevClip,
    category_metrics,
    confusion,
    edit_distance,
    normalise_text,
    sentiment_metrics,
    transcript_metrics,
    wer,
    words,
)
from tests.labelled_clips import CLIPS, make_clip

LABELS = ("animals & pets", "food & cooking", "vehicles", "technology", "nature")
COLUMNS = ("path", "category", "sentiment", "split", "kind", "language", "twin", "voice", "text", "source")


def _clip(category: str | None = None, sentiment: str | None = None, **kw: str) -> DevClip:
    fields = {"split": "test", "kind": "described", "language": "en", "twin": "", "voice": "", "source": ""}
    fields.update(kw)
    return DevClip(
        path="/x.mp4",
        rel="x.mp4",
        category=category,
        sentiment=sentiment,
        text=fields.pop("text", ""),
        in_category=category is not None,
        in_sentiment=sentiment is not None,
        **fields,
    )


def test_text_is_normalised_before_counting_words() -> None:
    assert normalise_text("  Hello,   World!  ¿Qué TAL? ") == "hello world qué tal"
    assert words("It's 3 o'clock.") == ["it", "s", "3", "o", "clock"]  # apostrophes are punctuation too
    assert words("我爱 猫。") == ["我", "爱", "猫"]  # Chinese: one token per character
    assert words("") == []


def test_word_edit_distance_counts_substitutions_deletions_insertions() -> None:
    assert edit_distance([], []) == 0
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance(["a", "b"], ["a", "b", "c", "d"]) == 2
    assert edit_distance(["a", "b", "c"], []) == 3
    assert edit_distance(["kitten", "sat"], ["sitting", "sat", "down"]) == 2


def test_wer_is_total_edits_over_total_reference_words() -> None:
    result = wer([("The cat sat.", "the cat sat"), ("a b c d", "a x c"), ("我爱猫", "我猫")])
    assert (result["n"], result["words"], result["errors"]) == (3, 10, 3)
    assert result["wer"] == pytest.approx(0.3)
    assert wer([])["wer"] is None


def test_category_tables_count_missing_answers_as_wrong() -> None:
    clips = [
        _clip("food & cooking", language="en"),
        _clip("food & cooking", language="es", kind="recorded_voice"),
        _clip("vehicles", language="en"),
        _clip("nature", language="zh", kind="no_speech"),
        _clip(None, "positive"),  # a sentiment-only clip: not scored for category
    ]
    answers = [
        Answer("food & cooking", "food & cooking", "food & cooking"),
        Answer("vehicles", "food & cooking", "vehicles"),  # fused wrong, vision right: "either" right
        Answer("vehicles", None, "technology"),
        Answer(error="decode_failed: broken"),
        Answer("nature", "nature", "nature"),
    ]
    m = category_metrics(clips, answers, LABELS)
    assert (m["n"], m["errors"]) == (4, 1)
    assert (m["fused"], m["vision"], m["text"], m["either"]) == (0.5, 0.5, 0.25, 0.5)
    assert m["per_class"]["food & cooking"]["fused"] == 0.5
    assert m["per_class"]["nature"]["n"] == 1 and m["per_class"]["nature"]["fused"] == 0.0
    assert list(m["by_language"]) == ["en", "es", "zh"]  # report order, not alphabetical by accident
    assert m["by_language"]["en"] == {"n": 2, "fused": 1.0, "vision": 0.5, "text": 0.5, "either": 0.5}
    assert m["by_kind"]["recorded_voice"]["either"] == 1.0
    food, vehicles, nature = 1, 2, 4
    matrix = m["confusion"]["matrix"]
    assert matrix[food][food] == 1 and matrix[food][vehicles] == 1
    assert matrix[vehicles][vehicles] == 1
    assert matrix[nature][len(LABELS)] == 1  # no answer: the last column
    assert sum(map(sum, matrix)) == 4


def test_confusion_rows_are_true_labels_and_columns_predictions() -> None:
    matrix = confusion(["a", "a", "b"], ["b", "a", "zzz"], ["a", "b"])
    assert matrix == [[1, 1, 0], [0, 0, 1]]


def test_sentiment_polar_accuracy_counts_neutral_as_wrong() -> None:
    clips = [
        _clip(None, "positive"),
        _clip(None, "negative"),
        _clip(None, "negative", language="de"),
        _clip(None, "neutral", language=""),
        _clip("nature", None),  # a category-only clip: not scored for sentiment
    ]
    answers = [Answer(sentiment=s) for s in ("positive", "neutral", "negative", "neutral", "negative")]
    m = sentiment_metrics(clips, answers)
    assert (m["n"], m["n_polar"], m["polar_as_neutral"]) == (4, 3, 1)
    assert m["polar"] == pytest.approx(2 / 3)
    assert m["three_class"] == pytest.approx(3 / 4)
    assert m["by_language"]["de"]["polar"] == 1.0
    assert m["by_language"]["(none)"]["n"] == 1  # a clip without a language still has a row


def test_transcript_wer_covers_clips_with_a_text_only() -> None:
    clips = [
        _clip("nature", text="a b c d"),
        _clip("nature", text=""),
        _clip("nature", text="我爱猫", language="zh"),
    ]
    answers = [Answer(transcript="a b c"), Answer(transcript="invented words"), Answer(transcript="我爱猫")]
    m = transcript_metrics(clips, answers)
    assert (m["n"], m["words"], m["errors"]) == (2, 7, 1)
    assert m["by_language"]["zh"]["wer"] == 0.0


def test_summary_line_shows_both_systems_and_the_difference() -> None:
    from scripts.eval_report import summary_lines

    def metrics(fused: float, neutral: int) -> dict[str, object]:
        return {
            "category": {"fused": fused, "vision": None, "text": 0.5, "either": 0.9},
            "sentiment": {"polar": 0.7, "three_class": 0.6, "polar_as_neutral": neutral},
            "transcript": {"wer": 0.1},
        }

    lines = summary_lines({"reelsense": metrics(0.812, 2), "naive": metrics(0.583, 5)})
    assert lines[0].split() == ["category", "fused", "reelsense", "0.812", "naive", "0.583", "(+0.229)"]
    assert "-" in lines[1] and "(" not in lines[1]  # vision missing: no difference
    assert "(-3)" in next(line for line in lines if line.startswith("polar said neutral"))


def test_devset_manifests_merge_by_path_and_filter_by_split(tmp_path: Path) -> None:
    from scripts.eval_devset import limited, read_devset

    _write_manifest(
        tmp_path / "category.csv", [("a.mp4", "nature", "", "test"), ("b.mp4", "news", "", "tune")]
    )
    _write_manifest(
        tmp_path / "sentiment.csv", [("a.mp4", "", "positive", "test"), ("c.wav", "", "negative", "test")]
    )
    clips = read_devset(tmp_path, "test")
    assert [c.rel for c in clips] == ["a.mp4", "c.wav"]
    a = clips[0]
    assert (a.category, a.sentiment, a.in_category, a.in_sentiment) == ("nature", "positive", True, True)
    assert a.path == str((tmp_path / "a.mp4").resolve())
    assert not clips[1].in_category
    assert [c.rel for c in limited(read_devset(tmp_path, None), 2)] == ["a.mp4", "b.mp4"]


def _write_manifest(path: Path, rows: list[tuple[str, str, str, str]], text: str = "") -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        for rel, category, sentiment, split in rows:
            fixed = {"kind": "described", "language": "en", "twin": "", "voice": "en", "source": "tests"}
            writer.writerow(
                {"path": rel, "category": category, "sentiment": sentiment, "split": split,
                 "text": text or _speech(rel), **fixed}
            )  # fmt: skip


def _speech(rel: str) -> str:
    name = Path(rel).stem
    return next((c.speech for c in CLIPS if c.name == name), "")


# -- real models ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def naive(model_cache: Path):  # type: ignore[no-untyped-def]
    from scripts.naive_baseline import NaiveBaseline

    return NaiveBaseline(cache_dir=model_cache)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labelled")


def test_naive_baseline_transcribes_and_answers_from_the_label_set(naive, clip_dir: Path) -> None:  # type: ignore[no-untyped-def]
    clip = next(c for c in CLIPS if c.name == "espresso")
    result = naive.analyze(make_clip(clip, clip_dir), LABELS)
    assert wer([(clip.speech, result.transcript)])["wer"] < 0.2
    assert result.language == "en"
    assert {result.category, result.vision_label, result.text_label} <= set(LABELS)
    assert result.text_label == "food & cooking"  # the transcript says espresso and coffee
    assert result.sentiment == "positive"  # "delicious ... the best coffee"
    audio_only = naive.analyze(clip_dir / f"{clip.name}.wav", LABELS)  # make_clip left the speech wav
    assert audio_only.vision_label is None and audio_only.category == audio_only.text_label


def test_eval_devset_end_to_end_then_from_its_cache(
    naive, clip_dir: Path, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    import scripts.naive_baseline
    from scripts import eval_devset

    devset = tmp_path / "devset"
    devset.mkdir()
    by_name = {c.name: c for c in CLIPS}
    for name in ("motorbike", "dog_noise"):
        shutil.copy(make_clip(by_name[name], clip_dir), devset / f"{name}.mp4")
    _write_manifest(devset / "category.csv", [("motorbike.mp4", "vehicles", "", "test")])
    _write_manifest(devset / "sentiment.csv", [("dog_noise.mp4", "", "negative", "test")])
    (devset / "labels.json").write_text(json.dumps({"labels": [{"name": n} for n in LABELS]}))
    monkeypatch.setattr(scripts.naive_baseline, "NaiveBaseline", lambda cache_dir=None: naive)
    argv = ["--devset", str(devset), "--split", "test", "--cache", str(tmp_path / "cache"),
            "--cache-dir", str(model_cache)]  # fmt: skip

    assert eval_devset.main([*argv, "--out", str(tmp_path / "first.json")]) == 0
    report = capsys.readouterr().out
    assert "category fused        reelsense" in report and "WER" in report
    first = json.loads((tmp_path / "first.json").read_text())
    assert [c["rel"] for c in first["clips"]] == ["motorbike.mp4", "dog_noise.mp4"]
    for row in first["clips"]:
        for system in ("reelsense", "naive"):
            answer = row[system]
            assert answer["error"] is None and answer["category"] in LABELS
            assert wer([(row["text"], answer["transcript"])])["wer"] < 0.3
    metrics = first["metrics"]
    assert metrics["reelsense"]["category"]["n"] == 1 and metrics["reelsense"]["sentiment"]["n_polar"] == 1
    assert metrics["reelsense"]["transcript"]["n"] == 2

    # From the cache: neither the Analyzer nor the naive baseline may load, and nothing changes.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr("pipeline.analyze.Analyzer", refuse)
    monkeypatch.setattr(scripts.naive_baseline, "NaiveBaseline", refuse)
    assert eval_devset.main([*argv, "--out", str(tmp_path / "second.json")]) == 0
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["metrics"] == metrics
    assert [c["reelsense"] for c in second["clips"]] == [c["reelsense"] for c in first["clips"]]
