"""The zero-shot fusion trusts each modality by how reliable it is on the clip, and corrects labels that
attract everything. Fake encoders with known geometry make "which modality is wrong" exact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from models.fusion import FusionConfig, FusionHead
from models.labels import LabelSet
from models.predictor import Predictor
from models.specs import parse_model_spec
from models.types import F32, EncodedVideo, SentimentScores, VisionOutput
from models.zero_shot import FusionConstants, Reliability, shipped_constants

LABELS = LabelSet(("cats", "cars"), (("cats",), ("cars",)), source="custom")
CLASSES = ("tabby", "jeep", "minivan")
# Each text maps to a fixed direction: cat-like texts to axis 0, car-like to axis 1.
DIRECTIONS = {"cats": [1, 0, 0.2], "cars": [0, 1, 0.2], "tabby": [0.9, 0.1, 0.3], "jeep": [0.1, 0.9, 0.3],
              "minivan": [0.1, 0.9, 0.3]}  # fmt: skip


class FakeText:
    spec = parse_model_spec("local:fake-text")
    dim = 3

    def encode(self, texts: Sequence[str]) -> F32:
        rows = np.asarray([DIRECTIONS[t] for t in texts], dtype=np.float32).reshape(-1, 3)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class FakeVision:
    spec = parse_model_spec("local:fake-vision")
    dim = 4
    joint_space = False
    class_names = CLASSES

    def encode_text(self, texts: Sequence[str]) -> F32:
        raise AssertionError("not a joint-space model")


def predictor(constants: FusionConstants, tmp_path: Path) -> Predictor:
    head = FusionHead(FusionConfig(vision_dim=4, audio_dim=2, text_dim=3, label_dim=3))
    return Predictor(head, name="zero-shot", fine_tuned=False, vision=FakeVision(), text=FakeText(),
                     cache_dir=tmp_path, constants=constants)  # fmt: skip


def clip(avg_logprob: float, words: int) -> EncodedVideo:
    """Frames clearly of a jeep (cars); a transcript about cats, with Whisper's confidence given."""
    probs = np.tile(np.asarray([[0.02, 0.95, 0.03]], dtype=np.float32), (4, 1))
    transcript = FakeText().encode(["cats"])
    return EncodedVideo(
        duration_s=2.0,
        frame_times_s=np.asarray([0.25, 0.75, 1.25, 1.75]),
        vision=VisionOutput(np.zeros((4, 4), np.float32), probs, CLASSES, joint_space=False),
        audio_embedding=np.zeros(2, np.float32),
        prosody=None,
        audio_tone=None,
        text_embeddings=np.vstack([transcript, transcript]),
        text_spans_s=np.asarray([[0.0, 2.0], [0.0, 2.0]]),
        text_sentiment=(None, None),
        text_quality=np.asarray([[avg_logprob, 0.05, words]] * 2, dtype=np.float32),
    )


# Trust in the transcript rises with Whisper's mean log-probability: ~0.05 at -1.5, ~0.95 at -0.1; the
# frames are trusted at 0.8 whatever they show (both experts are sure here: the weights decide).
TRUSTING = FusionConstants(
    text_reliability=Reliability(bias=3.0, coef=(4.0, 0.0, 0.0)), vision_reliability=Reliability(bias=1.4)
)


def test_an_unsure_transcript_gives_way_to_sure_frames(tmp_path: Path) -> None:
    parts = predictor(TRUSTING, tmp_path).predict(clip(avg_logprob=-1.5, words=1), LABELS, 5.0)
    assert parts.category.label == "cars"
    weights = parts.evidence["modality_weights"]
    assert weights["text"] < 0.1 and weights["vision"] == pytest.approx(0.8, abs=0.01)
    assert parts.evidence["category_by_modality"]["text"][0]["label"] == "cats"  # still reported


def test_a_confident_transcript_outweighs_the_frames(tmp_path: Path) -> None:
    parts = predictor(TRUSTING, tmp_path).predict(clip(avg_logprob=-0.1, words=8), LABELS, 5.0)
    assert parts.category.label == "cats"
    assert parts.evidence["modality_weights"]["text"] > 0.9


def test_without_reliability_both_count_fully(tmp_path: Path) -> None:
    parts = predictor(FusionConstants(), tmp_path).predict(clip(avg_logprob=-1.5, words=1), LABELS, 5.0)
    assert parts.evidence["modality_weights"] == pytest.approx({"vision": 1.0, "text": 1.0}, abs=1e-3)


def test_calibration_removes_a_label_s_pull_on_everything(tmp_path: Path) -> None:
    # "cars" sits close to every class text (two of three classes are vehicles): with calibration its
    # advantage over "cats" on a neutral frame shrinks.
    neutral = clip(avg_logprob=-0.1, words=8)
    neutral = EncodedVideo(**{**neutral.__dict__, "text_embeddings": np.zeros((0, 3), np.float32),
                              "text_spans_s": np.zeros((0, 2)), "text_sentiment": (),
                              "text_quality": np.zeros((0, 3), np.float32)})  # fmt: skip
    raw = predictor(FusionConstants(), tmp_path)
    calibrated = predictor(FusionConstants(vision_calibration=1.0), tmp_path)
    gap_raw = np.subtract(*raw.similarities(neutral, LABELS)[0][0][::-1])
    gap_cal = np.subtract(*calibrated.similarities(neutral, LABELS)[0][0][::-1])
    assert gap_cal < gap_raw


def test_sentiment_prior_follows_the_text_not_the_tone(tmp_path: Path) -> None:
    polar = SentimentScores((0.30, 0.45, 0.25), "text")
    encoded = EncodedVideo(**{**clip(-0.1, 8).__dict__, "text_sentiment": (polar, polar),
                              "audio_tone": SentimentScores((0.0, 1.0, 0.0), "audio")})  # fmt: skip
    committed = predictor(FusionConstants(sentiment_neutral_bias=-1.0), tmp_path).predict(
        encoded, LABELS, 5.0
    )
    assert committed.sentiment.label == "negative"
    plain = predictor(FusionConstants(), tmp_path).predict(encoded, LABELS, 5.0)
    assert plain.sentiment.label == "neutral"  # the text's own answer; the all-neutral tone adds nothing
    assert plain.sentiment.by_modality["audio"] is not None  # reported, not used


def test_shipped_constants_load_and_say_where_they_came_from() -> None:
    constants = shipped_constants()
    assert constants.vision_temperature > 0 and constants.text_temperature > 0
    assert 0 <= constants.expert_floor < 1
    assert "tune" in str(constants.provenance.get("on", "")) or constants.provenance.get("note")
