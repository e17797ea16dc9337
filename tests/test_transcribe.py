"""Whisper transcription on speech the tests synthesise with espeak-ng, with the bundled base model."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from core.errors import ErrorCode, MediaError
from pipeline.config import TranscribeConfig
from pipeline.transcribe import Transcriber
from pipeline.types import Audio, Transcript
from tests import media_factory as mf

SR = 16_000
SENTENCE = "Welcome to the cooking show. Today we make a simple tomato soup with fresh basil."


def _load_16k_mono(path: Path) -> npt.NDArray[np.float32]:
    """Decode any audio file to 16 kHz mono float32 with PyAV (independent of pipeline.audio)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
    parts: list[npt.NDArray[np.generic]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(parts).astype(np.float32)


def _speak(text: str, out: Path) -> npt.NDArray[np.float32]:
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True, timeout=30)
    return _load_16k_mono(out)


def _audio(samples: npt.NDArray[np.float32]) -> Audio:
    return Audio(samples=samples.astype(np.float32), sample_rate=SR, source_channels=1)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _assert_times_valid(tr: Transcript, duration: float) -> None:
    previous = 0.0
    for seg in tr.segments:
        assert 0.0 <= seg.start_s <= seg.end_s <= duration + 1e-6
        assert seg.start_s >= previous - 1e-6
        previous = seg.start_s
        for w in seg.words:
            assert seg.start_s - 1e-6 <= w.start_s <= w.end_s <= seg.end_s + 1e-6
            assert w.start_s >= previous - 1e-6  # ascending across the whole transcript
            previous = w.start_s


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whisper-cache")


@pytest.fixture(scope="session")
def transcriber(model_cache: Path) -> Transcriber:
    """The default configuration with the bundled model, loaded once for the session."""
    return Transcriber(TranscribeConfig(), device="cpu", cache_dir=model_cache)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # espeak-ng is a required test dependency (.ci/run installs it): missing, the tests fail, not skip.
    assert shutil.which("espeak-ng"), "espeak-ng is required for the tests: apt-get install espeak-ng"
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def sentence(speech_dir: Path) -> npt.NDArray[np.float32]:
    return _speak(SENTENCE, speech_dir / "sentence.wav")


@pytest.fixture(scope="session")
def sentence_result(transcriber: Transcriber, sentence: npt.NDArray[np.float32]) -> Iterator[Transcript]:
    start = time.perf_counter()
    result = transcriber.transcribe(_audio(sentence))
    print(f"\ntranscribed {sentence.size / SR:.2f} s of speech in {time.perf_counter() - start:.2f} s")
    yield result


def test_english_words_come_out(sentence_result: Transcript) -> None:
    assert sentence_result.has_speech
    expected = set(_words(SENTENCE))
    got = set(_words(sentence_result.text))
    assert len(expected & got) >= 0.8 * len(expected), sentence_result.text
    assert sentence_result.text == " ".join(s.text for s in sentence_result.segments)


def test_language_is_english(sentence_result: Transcript) -> None:
    assert sentence_result.language == "en"
    assert sentence_result.language_source in ("detected", "fallback")
    assert 0.0 < sentence_result.language_probability <= 1.0


# Spanish long enough (~7 s) for detection to be sure of it with espeak-ng's Spanish voice.
SPANISH = (
    "Buenos días a todos. Hoy vamos a preparar una sopa de tomate muy sencilla, con albahaca fresca y un "
    "poco de aceite de oliva."
)


def test_spanish_speech_is_detected_as_spanish(transcriber: Transcriber, speech_dir: Path) -> None:
    # Detection must work, not fall back: a transcriber forced to English fails here.
    wav = mf.speech_wav(speech_dir / "spanish.wav", SPANISH, voice="es", speed=140)
    result = transcriber.transcribe(_audio(_load_16k_mono(wav)))
    assert (result.language, result.language_source) == ("es", "detected"), result
    assert result.language_probability >= transcriber.config.min_language_probability
    said = set(re.findall(r"\w+", result.text.lower()))
    assert {"sopa", "tomate", "aceite", "oliva"} <= said, result.text


def test_segment_times_inside_audio_and_no_word_times_unless_asked(
    sentence_result: Transcript, sentence: npt.NDArray[np.float32]
) -> None:
    _assert_times_valid(sentence_result, sentence.size / SR)
    assert sentence_result.segments and not any(s.words for s in sentence_result.segments)


def test_word_times_when_asked_inside_their_segments_and_the_same_words(
    model_cache: Path, sentence_result: Transcript, sentence: npt.NDArray[np.float32]
) -> None:
    asked = Transcriber(TranscribeConfig(word_timestamps=True), device="cpu", cache_dir=model_cache)
    result = asked.transcribe(_audio(sentence))
    _assert_times_valid(result, sentence.size / SR)
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 10
    assert all(w.text and 0.0 <= w.probability <= 1.0 for w in words)
    assert _words(" ".join(w.text for w in words)) == _words(result.text)
    assert result.text == sentence_result.text  # the alignment pass times the words, it does not change them


def test_encoder_embedding(sentence_result: Transcript) -> None:
    emb = sentence_result.encoder_embedding
    assert emb is not None
    assert emb.shape == (512,) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb)) and float(np.abs(emb).sum()) > 0


def test_short_clip_runs_the_encoder_once(
    transcriber: Transcriber, speech_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Detection, embedding and decoding share one encoder pass when the speech fits in 30 s.
    backend = transcriber._backend
    calls: list[int] = []
    real = backend._encode  # type: ignore[attr-defined]

    def counting(features: object) -> object:
        calls.append(1)
        return real(features)

    monkeypatch.setattr(backend, "_encode", counting)
    result = transcriber.transcribe(_audio(_speak("Good morning everyone.", speech_dir / "gm.wav")))
    assert result.has_speech and result.language == "en"
    # This espeak voice is detected as Thai at ~0.5 (unsure), so both Thai and English are decoded and
    # the surer English kept: still never more than one encoder pass per decode plus the detection one.
    assert len(calls) <= 3
    calls.clear()
    sure = replace(transcriber.config, confident_language_probability=0.0, min_language_probability=0.0)
    monkeypatch.setattr(transcriber, "config", replace(sure, language="en"))
    assert transcriber.transcribe(_audio(_speak("Good morning everyone.", speech_dir / "gm.wav"))).has_speech
    assert len(calls) == 1  # embedding and decoding share one encoder pass when the speech fits in 30 s


def test_speech_after_silence_keeps_its_time(transcriber: Transcriber, speech_dir: Path) -> None:
    words = _speak("Hello there, my friend.", speech_dir / "hello.wav")
    samples = np.concatenate([np.zeros(3 * SR, np.float32), words, np.zeros(SR // 2, np.float32)])
    result = transcriber.transcribe(_audio(samples))
    assert result.has_speech
    assert result.segments[0].start_s > 2.5
    assert all(w.start_s > 2.5 for s in result.segments for w in s.words)
    _assert_times_valid(result, samples.size / SR)


def test_silence_has_no_speech(transcriber: Transcriber) -> None:
    result = transcriber.transcribe(_audio(np.zeros(5 * SR, np.float32)))
    assert not result.has_speech
    assert result.text == "" and result.segments == ()
    assert result.language is None and result.language_source == "none"


def test_tones_are_not_speech(transcriber: Transcriber) -> None:
    t = np.arange(5 * SR) / SR
    chord = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 660 * t)
    result = transcriber.transcribe(_audio(chord.astype(np.float32)))
    assert not result.has_speech
    assert result.text == ""
    # The audio encoder still gets its embedding for non-speech audio.
    assert result.encoder_embedding is not None and result.encoder_embedding.shape == (512,)


def test_empty_audio_is_silent(transcriber: Transcriber) -> None:
    result = transcriber.transcribe(Audio.empty(SR))
    assert result == Transcript.silent()


def test_wrong_sample_rate_is_refused(transcriber: Transcriber) -> None:
    with pytest.raises(MediaError) as err:
        transcriber.transcribe(Audio(np.zeros(8000, np.float32), 8000, 1))
    assert err.value.code is ErrorCode.TRANSCRIBE_FAILED


def test_backend_failure_is_wrapped(
    transcriber: Transcriber, sentence: npt.NDArray[np.float32], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object) -> None:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(transcriber._backend, "decode", boom)
    with pytest.raises(MediaError) as err:
        transcriber.transcribe(_audio(sentence))
    assert err.value.code is ErrorCode.TRANSCRIBE_FAILED
    assert "decoder exploded" in err.value.message


def test_low_confidence_detection_falls_back(model_cache: Path, speech_dir: Path) -> None:
    # Also runs without VAD, so the unfiltered path is covered.
    cfg = TranscribeConfig(min_language_probability=0.999, vad=False)
    samples = _speak("Good morning.", speech_dir / "short.wav")
    result = Transcriber(cfg, device="cpu", cache_dir=model_cache).transcribe(_audio(samples))
    assert result.language_source == "fallback"
    assert result.language == "en"
    assert "morning" in _words(result.text)
    _assert_times_valid(result, samples.size / SR)


def test_fixed_language_from_a_local_dir(
    transcriber: Transcriber, model_cache: Path, sentence: npt.NDArray[np.float32]
) -> None:
    model_dir = next(model_cache.glob("whisper-base-*"))  # joined by the session transcriber
    cfg = TranscribeConfig(model=f"local:{model_dir}", language="en")
    result = Transcriber(cfg, device="cpu").transcribe(_audio(sentence))
    assert result.language == "en" and result.language_source == "config"
    assert result.language_probability == 1.0
    assert "tomato" in _words(result.text)
    assert result.encoder_embedding is not None and result.encoder_embedding.shape == (512,)


def test_invalid_spec_is_refused() -> None:
    with pytest.raises(MediaError) as err:
        Transcriber(TranscribeConfig(model="base"))
    assert err.value.code is ErrorCode.INVALID_MODEL_SPEC


def test_local_dir_without_model_bin(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        Transcriber(TranscribeConfig(model=f"local:{tmp_path}"), device="cpu")
    assert err.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert "model.bin" in err.value.message
