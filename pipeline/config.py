"""Explicit configuration of the media pipeline, built at the edges (CLI flags, service settings).

Nothing in `pipeline/` reads the environment: these dataclasses are passed down. One object per concern,
each default written once: where the models run (`device`, `cpu_threads`) is said once, in
`AnalyzerConfig`, for every model; the model specs' defaults are `models.specs`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from models.specs import DEFAULT_BRIDGE_SPEC, DEFAULT_SPEECH_SPEC, DEFAULT_TEXT_SPEC, DEFAULT_VISION_SPEC

# A resolver maps (host, port) to the IP addresses a connection may use; tests inject a fake one so that
# no DNS query leaves the machine.
Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class FetchConfig:
    connect_timeout_s: float = 10.0  # TCP + TLS handshake
    read_timeout_s: float = 30.0  # longest silence between two chunks
    total_timeout_s: float = 300.0  # whole download, so a slow drip cannot hold a worker forever
    max_bytes: int = 2 * 1024**3  # refused while streaming, not after
    max_redirects: int = 5
    retries: int = 2  # extra attempts on connection errors and 429/502/503/504
    retry_backoff_s: float = 0.5  # doubled after each retry
    # CIDR networks that are allowed even though they are internal (e.g. "127.0.0.0/8" for a local
    # media server). Empty: every loopback, private, link-local, multicast, reserved and metadata
    # address is refused.
    allow_networks: tuple[str, ...] = ()
    user_agent: str = "reelsense/0.1"
    resolver: Resolver | None = field(default=None, compare=False)  # None: the system resolver


Backend = Literal["pyav", "decord"]
Device = Literal["auto", "cpu", "cuda"]
ResizeMode = Literal["crop", "pad"]


@dataclass(frozen=True)
class FrameConfig:
    # Frames sampled uniformly over the duration (when `fps` is None). 8, as the naive script: on the dev
    # set's tuning half every other frame of 16 gave vision alone 0.464 / 0.438 against 0.442 with all
    # 16, at half the vision encoder's cost (docs/DEVSET.md).
    num_frames: int = 8
    # ...but never closer than this (seconds), so a 3 s clip gets 6 frames, not 8: neighbouring frames of
    # a short clip repeat each other and the vision encoder is the frames path's main cost. None: off.
    min_spacing_s: float | None = 0.5
    min_frames: int = 4  # the spacing never leaves fewer than this
    fps: float | None = None  # sample at a fixed rate instead, capped by `max_frames`
    max_frames: int = 64  # the cap for fixed-rate sampling: memory is bounded by this, not video length
    size: int = 224  # output frames are size x size
    resize: ResizeMode = "crop"  # keep aspect, then centre-crop ("crop") or letterbox ("pad")
    backend: Backend = "pyav"  # PyAV: faster here, decodes AV1/VP9; decord: the decord2 fork
    # Decode forward instead of seeking when the next sample is this close (seconds). Used only when the
    # probe saw no keyframe interval (which is the better threshold); grows to the keyframe interval seen
    # while decoding, so a long-GOP file is not re-decoded from the same keyframe.
    seek_gap_s: float = 1.0
    # Decode work per video (and per re-spread attempt), in decoded pixels: ~4800 1080p frames, a few CPU
    # seconds. A 10-minute video with a single keyframe would otherwise be decoded whole; when the budget
    # runs out the samples are spread over the part reached (`Frames.truncated`). PyAV backend only.
    decode_budget_pixels: int = 10_000_000_000


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 16_000  # Whisper's rate
    max_duration_s: float = 3 * 3600.0  # ~690 MB of float32 at 16 kHz; beyond it the audio is cut


@dataclass(frozen=True)
class TranscribeConfig:
    """How speech becomes words (what changes the transcript). Where Whisper runs is the analyzer's
    `device` and `cpu_threads`, as for every other model."""

    model: str = DEFAULT_SPEECH_SPEC  # package:<name> | local:<dir> | hf:<org/name>@<revision>
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    language: str | None = None  # fixed language; None: detect, trusted above `min_language_probability`
    # Chosen on the dev set's tuning half: short English clips mis-detected stayed below 0.32, while German
    # and Spanish descriptions were detected right at 0.4-0.55 (0.8 sent them all to English).
    min_language_probability: float = 0.4
    # Between the two, the detected language and `fallback_language` are both decoded and the transcript
    # Whisper itself is surer of (mean token log-probability) is kept: an English sentence in an espeak
    # voice was "Thai" at 0.52, and its English decode is the surer one.
    confident_language_probability: float = 0.8
    fallback_language: str = "en"  # used when detection is below the threshold
    beam_size: int = 5
    # Decoding temperatures tried in turn when a window's result looks bad (low log-probability, repeats).
    # Only 0.0 by default: every temperature above it *samples*, so the same clip would get different
    # words in different runs and engines (seen: "...an ever had." vs "...an ever have." between the
    # in-process and the Ray engine). (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) is Whisper's own fallback ladder.
    temperatures: tuple[float, ...] = (0.0,)
    vad: bool = True  # Silero VAD: silence and music give no segments instead of invented text
    # Speech regions closer than this are decoded as one stretch of the original audio (the silence
    # between them kept): VAD cuts that splice words together cost accuracy on short clips.
    vad_merge_gap_s: float = 0.0
    no_speech_threshold: float = 0.6  # drop segments Whisper itself thinks are not speech...
    logprob_threshold: float = -1.0  # ...when they are also low-confidence (Whisper's own rule)
    # A segment whose text gzip-compresses better than this is a repetition loop ("5,5,4,5,4,5,..."):
    # Whisper's own failure test (it would retry hotter; at temperature 0 the segment is dropped instead).
    compression_ratio_threshold: float = 2.4
    # Each word's start and end (Whisper's cross-attention alignment): ~10 % of transcription time on CPU,
    # so only when asked (`--word-timestamps`, REELSENSE_WORD_TIMESTAMPS). Without it a segment has
    # Whisper's own segment times and no words; the text is the same (150 of 150 dev-set clips).
    word_timestamps: bool = False


@dataclass(frozen=True)
class MediaConfig:
    """Everything the media stage needs, in one value."""

    fetch: FetchConfig = field(default_factory=FetchConfig)
    frames: FrameConfig = field(default_factory=FrameConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    max_duration_s: float = 4 * 3600.0  # longer media is refused (media_too_long)
    max_pixels: int = 7680 * 4320  # larger video frames are refused at probe (frame_too_large): 8K UHD


@dataclass(frozen=True)
class AnalyzerConfig:
    """What `reelsense analyze` and both engines need: the media stage and the models."""

    media: MediaConfig = field(default_factory=MediaConfig)
    vision_model: str = DEFAULT_VISION_SPEC  # package:<name> | local:<dir> | hf:<org/name>@<rev>
    text_model: str = DEFAULT_TEXT_SPEC
    bridge_model: str = DEFAULT_BRIDGE_SPEC  # the vision bridge's sentence encoder (models/zero_shot.py)
    # Where every model runs (vision, Whisper, text, sentiment, the head): one device for all of them.
    device: Device = "auto"
    head: str | None = None  # a fine-tuned head's directory; None: the zero-shot head
    segment_s: float = 5.0  # length of the fixed windows reported in `segments`
    # Category can read the transcript with each English noun's WordNet hypernyms appended ("A fedora." ->
    # "... (fedora: hat, headdress, clothing; artifact)"). Off: it helped on true texts (0.75 -> 0.81)
    # but on Whisper's transcripts of the tuning half it lost, 0.345 raw against 0.311 expanded
    # (misheard words get expanded too; docs/DEVSET.md).
    expand_nouns: bool = False
    # Threads per model (torch intra-op, CTranslate2, BLAS): one per worker; parallelism comes from clips
    # analysed side by side (measured faster than threads inside one model).
    cpu_threads: int = 1
    # Clips one process analyses at once (the Ray engine's clip actor runs that many in threads). Whisper
    # keeps one decoder per clip over shared weights, so two clips in one process cost ~0.1 GB more where
    # a second process costs ~1.2 GB. Changes no answer.
    concurrent_clips: int = 1
    # Where bundled weights are joined (Whisper's) and label and class-term embeddings are cached, for every
    # model; None: the user cache dir (models.bundled.default_cache_dir). Changes no answer.
    cache_dir: str | None = None
