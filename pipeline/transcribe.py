"""Speech to text with Whisper: one loaded model per `Transcriber`, reused across videos.

Per call (16 kHz mono audio):
1. Silero VAD (shipped with faster-whisper) finds the speech; silence, tones, music and noise give none,
   and the result is an empty transcript instead of text Whisper would invent.
2. The first 30 s window of the speech (Whisper's context) is encoded once. That one encoder pass gives
   both the language distribution and `Transcript.encoder_embedding` (the encoder output averaged over
   the frames that hold audio, not padding): (512,) float32 for Whisper base. faster-whisper detects the
   language with such a pass too, so the embedding costs no extra encoder run.
3. Detection is trusted only at `min_language_probability` or above; short clips are otherwise often
   mis-detected (English heard as Japanese), so `fallback_language` is used and reported as "fallback".
4. The speech is decoded with the chosen language, without conditioning on previous text (it feeds
   hallucination loops), and segments Whisper itself marks as non-speech are dropped.

Times are seconds from the start of the given audio. Not thread-safe: give each worker its own instance.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.errors import ErrorCode, MediaError
from models.bundled import default_cache_dir, whisper_model_dir
from models.devices import pin_blas_threads, resolve_ctranslate2_device
from models.specs import ModelSpec, parse_model_spec
from pipeline.config import Device, TranscribeConfig
from pipeline.types import Audio, Transcript, TranscriptSegment, Word

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Whisper's input rate, Hz
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # 480000 samples: the 30 s window the encoder sees
HOP_SAMPLES = 160  # 10 ms per mel frame; the encoder halves it: one output frame per 20 ms

BUNDLED_ENCODER_DIMS = {"whisper-base": 512}  # known without running the encoder

LanguageProbs = list[tuple[str, float]]  # (ISO 639-1 code, probability), most likely first
Embedding = npt.NDArray[np.float32]


class _Backend(Protocol):
    def encode_window(
        self, window: npt.NDArray[np.float32], want_language: bool
    ) -> tuple[Embedding | None, LanguageProbs]:
        """Encode <= 30 s of audio once: (pooled encoder output, language distribution or [])."""
        ...

    def decode(
        self, samples: npt.NDArray[np.float32], language: str, should_stop: Callable[[], bool] | None
    ) -> list[TranscriptSegment]:
        """Transcribe the whole array; times relative to its start; stops early once `should_stop()`."""
        ...


class Transcriber:
    """Owns one loaded Whisper model (faster-whisper: CTranslate2 checkpoints).

    Bundled weights are joined into `cache_dir`, or the user cache dir when that is None. `device`,
    `cpu_threads` and `cache_dir` are the analyzer's (`AnalyzerConfig`), the same for every model.
    `embed=False` skips the encoder embedding when the language is fixed.
    """

    def __init__(
        self,
        config: TranscribeConfig,
        *,
        device: Device = "auto",
        cpu_threads: int = 1,
        concurrency: int = 1,
        cache_dir: str | Path | None = None,
        embed: bool = True,
    ) -> None:
        self.config = config
        self.embed = embed
        self.spec = parse_model_spec(config.model)
        pin_blas_threads(cpu_threads)  # the mel features must not depend on the engine's threads
        weights_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        source = _faster_whisper_source(self.spec, weights_dir)
        self._backend: _Backend = _FasterWhisper(source, self.spec, config, device, cpu_threads, concurrency)

    @functools.cached_property
    def embedding_dim(self) -> int:
        """Width of `Transcript.encoder_embedding` (the Whisper encoder's d_model: 512 for base)."""
        if self.spec.scheme == "package" and self.spec.name in BUNDLED_ENCODER_DIMS:
            return BUNDLED_ENCODER_DIMS[self.spec.name]
        # Other checkpoints: measure it once on half a second of silence (one encoder pass).
        embedding, _ = self._backend.encode_window(np.zeros(SAMPLE_RATE // 2, dtype=np.float32), False)
        if embedding is None:
            raise MediaError(ErrorCode.MODEL_UNAVAILABLE, f"{self.spec} gives no encoder embedding")
        return int(embedding.shape[0])

    def transcribe(self, audio: Audio, should_stop: Callable[[], bool] | None = None) -> Transcript:
        """Transcript of `audio` (mono float32 at 16 kHz); empty (has_speech False) when nothing is said.
        `should_stop` is asked between segments: once True, the segments so far are returned (the caller
        raises why at its next stage boundary).

        Raises MediaError(TRANSCRIBE_FAILED) when the backend fails.
        """
        if not audio.has_audio:
            return Transcript.silent()
        if audio.sample_rate != SAMPLE_RATE:
            raise MediaError(
                ErrorCode.TRANSCRIBE_FAILED,
                f"Whisper needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz",
            )
        samples = np.ascontiguousarray(audio.samples, dtype=np.float32)
        try:
            return self._transcribe(samples, should_stop)
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError(
                ErrorCode.TRANSCRIBE_FAILED, f"transcription failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _transcribe(
        self, samples: npt.NDArray[np.float32], should_stop: Callable[[], bool] | None = None
    ) -> Transcript:
        duration = samples.size / SAMPLE_RATE
        if self.config.vad:
            chunks = _merge_close(_speech_chunks(samples), int(self.config.vad_merge_gap_s * SAMPLE_RATE))
            speech = np.concatenate([samples[c["start"] : c["end"]] for c in chunks]) if chunks else samples
        else:
            chunks, speech = [{"start": 0, "end": samples.size}], samples
        detect = self.config.language is None
        embedding: Embedding | None = None
        probs: LanguageProbs = []
        if detect or self.embed:
            embedding, probs = self._backend.encode_window(speech[:WINDOW_SAMPLES], detect and bool(chunks))
        nothing = replace(Transcript.silent(), encoder_embedding=embedding)
        if not chunks:
            return nothing
        language, probability, source = self._choose_language(probs)
        kept = self._keep(self._backend.decode(speech, language, should_stop))
        cfg = self.config
        unsure = source == "detected" and probability < cfg.confident_language_probability
        if unsure and language != cfg.fallback_language:
            other = self._keep(self._backend.decode(speech, cfg.fallback_language, should_stop))
            if _confidence(other) > _confidence(kept):
                fallback_p = next((p for lang, p in probs if lang == cfg.fallback_language), 0.0)
                language, probability, source, kept = cfg.fallback_language, fallback_p, "fallback", other
        segments = _restore_times(kept, chunks, duration)
        if not segments:
            return nothing
        return Transcript(
            text=" ".join(s.text for s in segments),
            language=language,
            language_probability=probability,
            language_source=source,
            segments=tuple(segments),
            encoder_embedding=embedding,
        )

    def _choose_language(self, probs: LanguageProbs) -> tuple[str, float, str]:
        """(language, its probability, source) from the config or the detected distribution."""
        cfg = self.config
        if cfg.language is not None:
            return cfg.language, 1.0, "config"
        if probs and probs[0][1] >= cfg.min_language_probability:
            return probs[0][0], float(probs[0][1]), "detected"
        fallback_p = next((p for lang, p in probs if lang == cfg.fallback_language), 0.0)
        if probs:
            lang, p = probs[0]
            log.debug(
                "detected %s at %.2f < %.2f: using %s",
                lang,
                p,
                cfg.min_language_probability,
                cfg.fallback_language,
            )
        return cfg.fallback_language, float(fallback_p), "fallback"

    def _keep(self, segments: Sequence[TranscriptSegment]) -> list[TranscriptSegment]:
        """Drop empty segments and those Whisper rates as non-speech and low-confidence (its own rule)."""
        cfg = self.config
        return [
            s
            for s in segments
            if s.text
            and not (s.no_speech_prob > cfg.no_speech_threshold and s.avg_logprob < cfg.logprob_threshold)
        ]


def _confidence(segments: Sequence[TranscriptSegment]) -> float:
    """Word-weighted mean token log-probability of a decode; -inf when it kept nothing."""
    if not segments:
        return float("-inf")
    weights = [max(len(s.text.split()), 1) for s in segments]
    return sum(s.avg_logprob * w for s, w in zip(segments, weights, strict=True)) / sum(weights)


def _speech_chunks(samples: npt.NDArray[np.float32]) -> list[dict[str, int]]:
    """Silero VAD speech regions as {"start", "end"} sample indices (faster-whisper's default options)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [
        {"start": int(c["start"]), "end": int(c["end"])}
        for c in get_speech_timestamps(samples, VadOptions(), sampling_rate=SAMPLE_RATE)
    ]


def _merge_close(chunks: list[dict[str, int]], max_gap: int) -> list[dict[str, int]]:
    """Chunks whose gap is at most `max_gap` samples joined into one (in order, non-overlapping)."""
    merged: list[dict[str, int]] = []
    for chunk in chunks:
        if merged and chunk["start"] - merged[-1]["end"] <= max_gap:
            merged[-1] = {"start": merged[-1]["start"], "end": max(merged[-1]["end"], chunk["end"])}
        else:
            merged.append(dict(chunk))
    return merged


def _restore_times(
    segments: Sequence[TranscriptSegment], chunks: list[dict[str, int]], duration: float
) -> list[TranscriptSegment]:
    """Map times in the concatenated speech back to the original audio (a word keeps its chunk)."""
    from faster_whisper.vad import SpeechTimestampsMap

    ts_map = SpeechTimestampsMap(chunks, SAMPLE_RATE)

    def orig(t: float, chunk: int | None = None, is_end: bool = False) -> float:
        return min(max(float(ts_map.get_original_time(t, chunk, is_end)), 0.0), duration)

    out = []
    for seg in segments:
        if not seg.words:
            out.append(replace(seg, start_s=orig(seg.start_s), end_s=orig(seg.end_s, is_end=True)))
            continue
        words = []
        for w in seg.words:
            chunk = ts_map.get_chunk_index((w.start_s + w.end_s) / 2)
            words.append(replace(w, start_s=orig(w.start_s, chunk), end_s=orig(w.end_s, chunk)))
        out.append(replace(seg, start_s=words[0].start_s, end_s=words[-1].end_s, words=tuple(words)))
    return out


def _pool(encoded: npt.NDArray[Any], content_samples: int) -> Embedding | None:
    """Mean over the encoder frames that hold audio: (1, 1500, D) -> (D,) float32; None if not finite."""
    frames = max(1, min(encoded.shape[1], math.ceil(content_samples / HOP_SAMPLES / 2)))
    pooled = np.asarray(encoded[0, :frames], dtype=np.float32).mean(axis=0)
    return pooled if bool(np.all(np.isfinite(pooled))) else None


# --- faster-whisper (CTranslate2) -------------------------------------------------------------


def _faster_whisper_source(spec: ModelSpec, cache_dir: Path) -> str:
    """What to pass to faster_whisper.WhisperModel: a verified model dir, or a hub repo id."""
    if spec.scheme == "package":
        return str(whisper_model_dir(spec.name, cache_dir))
    if spec.scheme == "hf":
        return spec.name
    path = Path(spec.name).expanduser()
    if not (path / "model.bin").is_file():
        raise MediaError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"{path} is not a CTranslate2 Whisper model directory (no model.bin); convert a .pt checkpoint "
            "with ct2-transformers-converter",
        )
    return str(path)


class _FasterWhisper:
    def __init__(
        self,
        source: str,
        spec: ModelSpec,
        config: TranscribeConfig,
        device: Device,
        cpu_threads: int,
        concurrency: int = 1,
    ) -> None:
        from faster_whisper import WhisperModel

        self.config = config
        resolved = resolve_ctranslate2_device(device)
        compute_type = config.compute_type or ("float16" if resolved == "cuda" else "int8")
        try:
            self.model = WhisperModel(
                source,
                device=resolved,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                # One CTranslate2 replica per clip transcribed at once; replicas on one device share
                # the weights. With one, a second thread's transcription waits for the first.
                num_workers=max(1, concurrency),
                revision=spec.revision,  # hub only: pins the download (None: the default branch)
            )
        except Exception as exc:
            hint = (
                " (hub models need a network; package:whisper-base works offline)"
                if spec.scheme == "hf"
                else ""
            )
            raise MediaError(
                ErrorCode.MODEL_UNAVAILABLE, f"could not load Whisper model {spec} on {resolved}: {exc}{hint}"
            ) from exc
        self._encode = self.model.encode
        # Per thread: (mel window, its encoder output). Two clips transcribed at once must not take
        # each other's window (the equality check would only miss, but every miss is an encoder pass).
        self._last = threading.local()
        self.model.encode = self._encode_reusing

    def _encode_reusing(self, features: npt.NDArray[np.float32]) -> Any:
        """WhisperModel.encode, answered from `encode_window`'s pass when given the very same window.

        Installed on the model instance, so faster-whisper's decoder (which calls `self.encode` per 30 s
        window) reuses the encoder output of the first window when the speech fits in 30 s: one encoder
        run per short clip instead of two (~1 s of ~2.3 s here). The equality check keeps it correct if
        faster-whisper computes its features differently (longer audio, another version): then it encodes.
        """
        last: tuple[npt.NDArray[np.float32], Any] | None = getattr(self._last, "window", None)
        if last is not None and last[0].shape == features.shape and np.array_equal(last[0], features):
            return last[1]
        return self._encode(features)

    def encode_window(
        self, window: npt.NDArray[np.float32], want_language: bool
    ) -> tuple[Embedding | None, LanguageProbs]:
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        # The same padded mel window faster-whisper's decoder builds: content frames (the extractor's
        # last frame is padding), zero-padded to 3000 frames. (n_mels, 3000)
        features = pad_or_trim(self.model.feature_extractor(window)[:, :-1])
        encoded = self._encode(features)  # StorageView (1, 1500, D)
        self._last.window = (features, encoded)
        probs: LanguageProbs = []
        if want_language and self.model.model.is_multilingual:
            probs = [(tok[2:-2], float(p)) for tok, p in self.model.model.detect_language(encoded)[0]]
        elif want_language:
            probs = [("en", 1.0)]  # English-only checkpoints (.en) have no language tokens
        try:
            view = encoded if encoded.device == "cpu" else encoded.to_device(ctranslate2.Device.cpu)
            if view.dtype != ctranslate2.DataType.float32:
                view = view.to(ctranslate2.DataType.float32)
            embedding = _pool(np.asarray(view), window.size)
        except Exception as exc:  # a backend quirk must not cost the transcript
            log.warning("no Whisper encoder embedding: %s", exc)
            embedding = None
        return embedding, probs

    def decode(
        self, samples: npt.NDArray[np.float32], language: str, should_stop: Callable[[], bool] | None
    ) -> list[TranscriptSegment]:
        cfg = self.config
        # This thread's `_last` stays until its next clip's encode_window: a second decode of the same
        # speech (another language) reuses the encoder output too.
        segments, _info = self.model.transcribe(
            samples,
            language=language,
            beam_size=cfg.beam_size,
            temperature=list(cfg.temperatures),
            word_timestamps=cfg.word_timestamps,
            condition_on_previous_text=False,
            vad_filter=False,  # done once by the Transcriber, on the original audio
            no_speech_threshold=cfg.no_speech_threshold,
            log_prob_threshold=cfg.logprob_threshold,
            compression_ratio_threshold=cfg.compression_ratio_threshold,
        )
        # The generator runs the decoder: consume it here, inside the caller's error handling,
        # and stop pulling (no more decoding) once asked to.
        kept: list[TranscriptSegment] = []
        for s in segments:
            if s.compression_ratio <= cfg.compression_ratio_threshold:
                kept.append(_segment(s))
            if should_stop is not None and should_stop():
                break
        return kept


def _segment(s: Any) -> TranscriptSegment:
    """faster_whisper.transcribe.Segment -> TranscriptSegment (text and words stripped)."""
    return TranscriptSegment(
        start_s=float(s.start),
        end_s=float(s.end),
        text=s.text.strip(),
        avg_logprob=float(s.avg_logprob),
        no_speech_prob=float(s.no_speech_prob),
        words=tuple(
            Word(float(w.start), float(w.end), w.word.strip(), float(w.probability))
            for w in (s.words or ())
            if w.word.strip()
        ),
    )
