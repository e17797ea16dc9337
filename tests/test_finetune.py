"""Fine-tuning end to end: features into the cache (in-process engine), a head trained on labels the
zero-shot priors cannot read, beating the zero-shot head on held-out videos; reproducible; checkpoints.

The category labels are opaque codes ("A", "B", "C") for what the picture shows, while the speech talks
about anything: the label prompts say nothing, so the priors guess, but the frames separate the classes.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest

from models.checkpoint import load_head
from pipeline.analyze import AnalyzerConfig
from pipeline.config import FrameConfig, MediaConfig
from pipeline.errors import MediaError
from scripts.cli import main
from scripts.finetune import FeatureOptions, evaluate_manifest
from tests.labelled_clips import LabelledClip, make_clip

PICTURES = {"A": ("chelsea",), "B": ("coffee",), "C": ("stereo_motorcycle", "rocket")}
SPEECH = (
    ("I really love this, it made my whole day wonderful.", "positive"),
    ("This is awful, I am so disappointed and angry.", "negative"),
    ("The meeting starts at nine and ends at ten.", "neutral"),
    ("What a fantastic surprise, I am thrilled.", "positive"),
    ("Everything went wrong today, a terrible mess.", "negative"),
    ("The report has three sections and an appendix.", "neutral"),
)
FLAGS = ["--engine", "inprocess", "--frames", "4", "--device", "cpu", "--no-progress"]


def _clips() -> list[LabelledClip]:
    clips = []
    for code, pictures in PICTURES.items():
        for i, (speech, sentiment) in enumerate(SPEECH):
            picture = pictures[i % len(pictures)]
            clips.append(LabelledClip(f"ft_{code}_{i}", picture, speech, code, sentiment))
    return clips  # 18 clips: 6 per code


def _write(path: Path, rows: list[tuple[Path, LabelledClip]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "category", "sentiment"])
        writer.writerows([str(p), c.category, c.sentiment] for p, c in rows)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("finetune")
    made = [(make_clip(clip, root), clip) for clip in _clips()]
    held = [m for m in made if m[1].name.endswith(("_1", "_3"))]  # 2 per code, unseen in training
    train = _write(root / "train.csv", [m for m in made if m not in held])
    with (root / "train.csv").open("a") as file:  # bad rows are reported and skipped, not fatal
        file.write(f"{root / 'missing.mp4'},A,positive\n{made[0][0]},A,ecstatic\n")
    test = _write(root / "test.csv", held)
    cache = root / "cache"
    common = [*FLAGS, "--cache", str(cache), "--epochs", "40", "--lr", "3e-3", "--batch-size", "4"]
    for out in ("head1", "head2"):
        args = ["finetune", "--train", str(train), "--val-split", "0.25", "--out", str(root / out)]
        assert main([*args, "--seed", "1", *common]) == 0
    return {"root": root, "train": train, "test": test, "cache": cache}


def test_finetuned_head_beats_zero_shot_on_held_out(setup: dict[str, Any]) -> None:
    config = AnalyzerConfig(media=MediaConfig(frames=FrameConfig(num_frames=4)), device="cpu")
    options = FeatureOptions(setup["cache"], engine="inprocess", progress=False)
    result = evaluate_manifest(setup["test"], config, options, setup["root"] / "head1", None)
    assert result["labels"] == ["A", "B", "C"] and result["videos"] == 6
    zero, tuned = result["zero_shot"]["category"], result["fine_tuned"]["category"]
    assert tuned["accuracy"] >= zero["accuracy"] + 0.3, (zero, tuned)
    assert tuned["macro_f1"] > zero["macro_f1"]
    report = (setup["root"] / "head1" / "report.json").read_text()
    assert '"best_epoch"' in report
    for png in ("curves.png", "confusion_category.png", "confusion_sentiment.png"):
        assert (setup["root"] / "head1" / png).stat().st_size > 1000


def test_training_is_reproducible_with_a_seed(setup: dict[str, Any]) -> None:
    digests = [
        hashlib.sha256((setup["root"] / out / "head.safetensors").read_bytes()).hexdigest()
        for out in ("head1", "head2")
    ]
    assert digests[0] == digests[1]
    reports = [(setup["root"] / out / "report.json").read_text() for out in ("head1", "head2")]
    assert reports[0] == reports[1].replace("head2", "head1")


def test_checkpoint_round_trips_and_refuses_other_encoder_dims(setup: dict[str, Any]) -> None:
    head_dir = setup["root"] / "head1"
    loaded = load_head(head_dir, expected_encoders={})
    assert loaded.label_names == ("A", "B", "C")
    assert loaded.extra is not None
    assert loaded.extra["manifest_sha256"] == hashlib.sha256(setup["train"].read_bytes()).hexdigest()
    vision = loaded.encoder_specs["vision"]
    with pytest.raises(MediaError, match="trained on"):
        load_head(head_dir, expected_encoders={"vision": (vision.spec, vision.dim + 1)})


def test_eval_command_prints_both_heads(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    head = str(setup["root"] / "head1")
    args = ["eval", "--manifest", str(setup["test"]), "--head", head, "--cache", str(setup["cache"]), *FLAGS]
    assert main([*args, "--plots", str(setup["root"] / "plots")]) == 0
    out = capsys.readouterr().out
    assert "zero_shot" in out and "fine_tuned" in out and "macro_f1" in out
    assert (setup["root"] / "plots" / "eval_category.png").is_file()


def test_analyze_with_a_head_uses_its_labels_and_explains_itself(setup: dict[str, Any]) -> None:
    from pipeline.analyze import Analyzer

    head = setup["root"] / "head1"
    config = AnalyzerConfig(media=MediaConfig(frames=FrameConfig(num_frames=4)), device="cpu", head=str(head))
    clip = next(iter(csv.DictReader(setup["test"].open())))
    prediction = Analyzer(config).analyze(clip["path"])  # no labels given: the head's own
    assert prediction.status == "ok"
    assert set(prediction.category.scores) == {"A", "B", "C"}
    assert prediction.model.head == "head1"
    assert prediction.evidence["head"]["kind"] == "fine-tuned"
    assert set(prediction.evidence["head"]["without_modality"]) == {"vision", "audio", "text"}


def test_one_analyzer_serves_several_heads_on_the_same_encoders(setup: dict[str, Any]) -> None:
    from pipeline.analyze import Analyzer

    zero_shot = Analyzer(AnalyzerConfig(media=MediaConfig(frames=FrameConfig(num_frames=4)), device="cpu"))
    clip = next(iter(csv.DictReader(setup["test"].open())))
    tuned = zero_shot.analyze(clip["path"], head=setup["root"] / "head2")
    assert tuned.status == "ok" and tuned.model.head == "head2"
    assert set(tuned.category.scores) == {"A", "B", "C"}
    plain = zero_shot.analyze(clip["path"])  # the configured (zero-shot) head is untouched
    assert plain.model.head != "head2" and len(plain.category.scores) > 3
    loaded = zero_shot.predictor_for(setup["root"] / "head2")
    assert loaded is zero_shot.predictor_for(str(setup["root"] / "head2"))  # kept, not reloaded
    missing = zero_shot.analyze(clip["path"], head=setup["root"] / "no-such-head")
    assert missing.status == "error" and "no-such-head" in missing.error.message
