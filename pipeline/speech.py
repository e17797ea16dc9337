"""The speech half of the audio path: Whisper, then the text encoder and text sentiment per segment.

`SpeechEncoder` owns those three models; the `Analyzer` (in-process, and in each of the Ray engine's
clip actors) uses it, so the two engines compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.sentiment import TextSentiment, audio_tone
from models.sentiment_heads import EMBEDDING_SPEC as SENTIMENT_EMBEDDING_SPEC
from models.specs import parse_model_spec
from models.text import TextEncoder, uses_transformers
from models.types import F32, AudioFeatures, SentimentScores
from models.wordnet import expand_text
from pipeline.config import AnalyzerConfig
from pipeline.loading import ModelLoader
from pipeline.media import timed
from pipeline.transcribe import Transcriber
from pipeline.types import Audio, Transcript


@dataclass(frozen=True)
class SpeechResult:
    """What the audio path gives the head. Text rows: 0 = whole transcript, 1.. = its segments."""

    transcript: Transcript
    audio_embedding: F32 | None  # pooled Whisper encoder output, None without audio
    prosody: F32 | None  # AudioFeatures.vector(), None without audio
    tone: SentimentScores | None
    text_embeddings: F32  # (S, D); S == 0 when nothing was said
    text_spans_s: npt.NDArray[np.float64]  # (S, 2) start/end seconds of each text row
    text_sentiment: tuple[SentimentScores | None, ...]  # per text row
    timings_ms: dict[str, float]
    text_quality: F32 | None = None  # (S, 3) per text row: avg log-prob, no-speech prob, words


class SpeechEncoder:
    """Loads Whisper, the text encoder and the sentiment model once; `encode` per video."""

    def __init__(self, config: AnalyzerConfig, loader: ModelLoader | None = None) -> None:
        """The three models load at the same time, in `loader`'s threads (shared with the caller's other
        models) or in a loader of its own."""
        self.expand_nouns = config.expand_nouns
        text_model, device = config.text_model, config.device
        with nullcontext(loader) if loader is not None else ModelLoader() as pool:
            transcriber = pool.submit(
                lambda: Transcriber(
                    config.media.transcribe,
                    device=device,
                    cpu_threads=config.cpu_threads,
                    concurrency=config.concurrent_clips,
                    cache_dir=config.cache_dir,
                )
            )
            text = pool.submit(
                lambda: TextEncoder(text_model, device), uses_transformers=uses_transformers(text_model)
            )
            # Text sentiment reads e5-small vectors (its heads were trained on them): the category
            # encoder's when that is e5, else its own.
            same = str(parse_model_spec(text_model)) == SENTIMENT_EMBEDDING_SPEC
            sentiment_text = None if same else pool.submit(
                lambda: TextEncoder(SENTIMENT_EMBEDDING_SPEC, device=device),
                uses_transformers=uses_transformers(SENTIMENT_EMBEDDING_SPEC),
            )  # fmt: skip
            sentiment = pool.submit(lambda: TextSentiment().load())
            self.transcriber = transcriber.result()
            self.text = text.result()
            self.sentiment_text = self.text if sentiment_text is None else sentiment_text.result()
            loaded = sentiment.result()
        self.sentiment = TextSentiment(
            embed=self.sentiment_text.encode, weights=loaded.weights, neural=loaded.neural
        )

    def warm_up(self) -> None:
        """Run the text encoders and text sentiment once (their first call is the slow one)."""
        texts = ["A short warm-up sentence."]
        self.text.encode([expand_text(t) for t in texts] if self.expand_nouns else texts)
        self._sentiments(texts)

    def encode(
        self,
        audio: Audio,
        features: AudioFeatures,
        on_transcribed: Callable[[], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SpeechResult:
        """`should_stop` ends Whisper early (between segments); `on_transcribed` is where to raise."""
        transcript, transcribe_ms = timed(
            lambda: (
                self.transcriber.transcribe(audio, should_stop=should_stop)
                if audio.has_audio
                else Transcript.silent()
            )
        )
        if on_transcribed is not None:
            on_transcribed()
        texts = [transcript.text, *(s.text for s in transcript.segments)] if transcript.has_speech else []
        (embeddings, sentiments), text_ms = timed(
            lambda: (
                self.text.encode([expand_text(t) for t in texts] if self.expand_nouns else texts),
                self._sentiments(texts),  # sentiment reads the words
            )
        )
        spans = [(s.start_s, s.end_s) for s in transcript.segments]
        if spans:
            spans.insert(0, (spans[0][0], spans[-1][1]))
        return SpeechResult(
            transcript=transcript,
            audio_embedding=transcript.encoder_embedding if audio.has_audio else None,
            prosody=features.vector() if audio.has_audio else None,
            tone=audio_tone(features) if audio.has_audio else None,
            text_embeddings=embeddings,
            text_spans_s=np.asarray(spans, dtype=np.float64).reshape(-1, 2),
            text_sentiment=sentiments,
            timings_ms={"transcribe": transcribe_ms, "text": text_ms},
            text_quality=text_quality(transcript),
        )

    def _sentiments(self, texts: list[str]) -> tuple[SentimentScores | None, ...]:
        """Per text row; each distinct text scored once (a one-segment transcript is row 0 and row 1, and
        the e5 pass costs ~40 ms a text)."""
        unique = list(dict.fromkeys(texts))
        scored = dict(zip(unique, self.sentiment.score_many(unique), strict=True))
        return tuple(scored[t] for t in texts)


def text_quality(transcript: Transcript) -> F32:
    """(S, 3) Whisper's confidence per text row (row 0, the whole transcript, then each segment):
    mean token log-probability, no-speech probability, number of words. (0, 3) without speech."""
    if not transcript.has_speech:
        return np.zeros((0, 3), dtype=np.float32)
    rows = [(s.avg_logprob, s.no_speech_prob, float(len(s.text.split()))) for s in transcript.segments]
    segments = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    words = segments[:, 2]
    weights = np.maximum(words, 1.0)
    whole = (
        float((segments[:, 0] * weights).sum() / weights.sum()),
        float((segments[:, 1] * weights).sum() / weights.sum()),
        float(words.sum()),
    )
    return np.vstack([np.asarray(whole)[None, :], segments]).astype(np.float32)
