"""Configuration: one object per concern, defaults written once, the service can set what the CLI can,
and the feature cache's key for the default set-up is the one existing caches were written under."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from models.feature_cache import cache_key
from models.specs import DEFAULT_SPEECH_SPEC, DEFAULT_TEXT_SPEC, DEFAULT_VISION_SPEC
from pipeline.config import AnalyzerConfig, FrameConfig, TranscribeConfig
from scripts.cli import _analyzer_config, _build_parser
from scripts.finetune_data import fingerprint
from service.settings import Settings
from tests.service_helpers import make_settings

# fingerprint(AnalyzerConfig()): the configs' reorganisation kept the key of 90f330f; the defaults changed
# since (8 frames, no noun expansion, no word timestamps: segments keep Whisper's own times, so the text
# spans move; docs/DEVSET.md). Changing it orphans every feature cache: only a
# change to what the encoders compute may do so (retrained sentiment heads change "sentiment_weights",
# deliberately).
DEFAULT_FINGERPRINT = {
    "vision": "package:efficientnet-lite0",
    "text": "package:use-multilingual-v3",
    "expand_nouns": False,
    "speech": {
        "model": "package:whisper-base",
        "backend": "faster-whisper",
        "compute_type": None,
        "cpu_threads": 1,
        "language": None,
        "min_language_probability": 0.4,
        "confident_language_probability": 0.8,
        "fallback_language": "en",
        "beam_size": 5,
        "temperatures": (0.0,),
        "vad": True,
        "vad_merge_gap_s": 0.0,
        "no_speech_threshold": 0.6,
        "logprob_threshold": -1.0,
        "compression_ratio_threshold": 2.4,
        "word_timestamps": False,
    },
    "frames": {
        "num_frames": 8,
        "min_spacing_s": 0.5,
        "min_frames": 4,
        "fps": None,
        "max_frames": 64,
        "size": 224,
        "resize": "crop",
        "backend": "pyav",
        "seek_gap_s": 1.0,
    },
    "sentiment_weights": "992887dc040afe69",
}
DEFAULT_CACHE_KEY = "eeb9a82c8cd37a131b62c88585581284cd9e8055f731eee8c4e689e24d33e13d"  # for content "0" * 64


def test_the_default_fingerprint_is_the_one_caches_were_written_under() -> None:
    assert fingerprint(AnalyzerConfig()) == DEFAULT_FINGERPRINT
    assert cache_key("0" * 64, fingerprint(AnalyzerConfig())) == DEFAULT_CACHE_KEY


def test_where_models_run_and_live_changes_no_cache_key() -> None:
    default = fingerprint(AnalyzerConfig())
    media = AnalyzerConfig().media
    assert fingerprint(AnalyzerConfig(cache_dir="/somewhere/else", device="cuda")) == default
    fewer_frames = replace(media, frames=FrameConfig(num_frames=4))
    assert fingerprint(AnalyzerConfig(media=fewer_frames)) != default
    assert fingerprint(AnalyzerConfig(cpu_threads=2)) != default  # in the key since the first caches


def test_device_and_threads_are_said_once_for_every_model() -> None:
    transcribe = {f.name for f in fields(TranscribeConfig)}
    assert not {"device", "cpu_threads"} & transcribe
    assert {"device", "cpu_threads"} <= {f.name for f in fields(AnalyzerConfig)}


def test_model_spec_defaults_are_written_once() -> None:
    config, settings = AnalyzerConfig(), Settings(_env_file=None)  # type: ignore[call-arg]
    assert (config.vision_model, config.text_model, config.media.transcribe.model) == (
        DEFAULT_VISION_SPEC,
        DEFAULT_TEXT_SPEC,
        DEFAULT_SPEECH_SPEC,
    )
    assert (settings.vision_model, settings.text_model, settings.whisper_model) == (
        DEFAULT_VISION_SPEC,
        DEFAULT_TEXT_SPEC,
        DEFAULT_SPEECH_SPEC,
    )
    assert settings.analyzer_config() == AnalyzerConfig(
        media=replace(config.media, fetch=settings.fetch_config())
    )


def test_the_service_can_set_every_analysis_option_the_cli_can(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    flags = [
        "analyze", "clip.mp4", "--frames", "6", "--fps", "2.5", "--max-frames", "12", "--size", "160",
        "--resize", "pad", "--backend", "decord", "--language", "de", "--segment-seconds", "2.5",
        "--device", "cpu", "--whisper-model", "local:/models/whisper", "--vision-model", "local:/models/clip",
        "--text-model", "package:minilm-l6-v2", "--cache-dir", cache, "--expand-nouns", "--word-timestamps",
    ]  # fmt: skip
    from_cli = _analyzer_config(_build_parser().parse_args(flags))
    settings = make_settings(
        tmp_path, frames=6, fps=2.5, max_frames=12, frame_size=160, resize="pad", frame_backend="decord",
        language="de", segment_s=2.5, device="cpu", whisper_model="local:/models/whisper",
        vision_model="local:/models/clip", text_model="package:minilm-l6-v2", cache_dir=cache,
        expand_nouns=True, word_timestamps=True,
    )  # fmt: skip
    assert settings.analyzer_config() == from_cli
    # Every flag above moved the configuration away from its default, so none of them went unchecked.
    default = AnalyzerConfig()
    changed = {
        name
        for part, base in ((from_cli.media.frames, default.media.frames), (from_cli, default))
        for name in (f.name for f in fields(part))
        if getattr(part, name) != getattr(base, name)
    }
    assert {"num_frames", "fps", "max_frames", "size", "resize", "backend"} <= changed
    assert {"segment_s", "device", "vision_model", "text_model", "expand_nouns", "media"} <= changed
    assert from_cli.media.transcribe.language == "de"
    assert from_cli.media.transcribe.word_timestamps != default.media.transcribe.word_timestamps
