"""Fine-tuning's feature cache: each video's `EncodedVideo`, computed once by the frozen encoders.

One file per video, `<key>.npz`, written atomically. The key is a sha256 of the video's content hash and
a fingerprint of everything that changes the features (encoder specs, frame sampling), so a changed file
or a changed encoder never reuses stale features, and an unchanged one is never decoded twice.

Format (no pickle: read back with `allow_pickle=False`): the arrays of `EncodedVideo` under their field
names (`vision_class_probs`, `audio_embedding`, `prosody`, `text_quality` only when present), plus `meta`,
a uint8 array holding UTF-8 JSON with the scalars (duration, joint_space, class names, sentiment tuples,
transcript).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.types import EncodedVideo, SentimentScores, VisionOutput

FORMAT_VERSION = (
    2  # 2: text_quality; bump when the stored layout changes: older files are then simply recomputed
)
_CHUNK = 1 << 20  # bytes read at a time while hashing a file


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(content_sha256: str, fingerprint: dict[str, Any]) -> str:
    """The cache key of one video's features under one encoder set-up (`fingerprint`, JSON-able)."""
    blob = json.dumps({"v": FORMAT_VERSION, "content": content_sha256, "setup": fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedVideo:
    """One video's cached features and the little of its transcript training reports use."""

    encoded: EncodedVideo
    transcript: str


class FeatureCache:
    """A folder of `<key>.npz` files; safe for concurrent writers (atomic rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> CachedVideo | None:
        """The cached video, or None when absent or unreadable (it is then recomputed)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return _decode({name: data[name] for name in data.files})
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return None

    def put(self, key: str, video: CachedVideo) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **_encode(video))
        path = self.path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)  # a reader sees a whole file or none
        return path


def _scores(value: SentimentScores | None) -> dict[str, Any] | None:
    return None if value is None else {"probs": list(value.probs), "source": value.source}


def _unscores(value: dict[str, Any] | None) -> SentimentScores | None:
    if value is None:
        return None
    p = [float(x) for x in value["probs"]]
    return SentimentScores(probs=(p[0], p[1], p[2]), source=str(value["source"]))


def _encode(video: CachedVideo) -> dict[str, np.ndarray]:
    e = video.encoded
    meta = {
        "format_version": FORMAT_VERSION,
        "duration_s": e.duration_s,
        "joint_space": e.vision.joint_space,
        "class_names": list(e.vision.class_names),
        "audio_tone": _scores(e.audio_tone),
        "text_sentiment": [_scores(s) for s in e.text_sentiment],
        "transcript": video.transcript,
    }
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "frame_times_s": e.frame_times_s,
        "vision_embeddings": e.vision.embeddings,
        "text_embeddings": e.text_embeddings,
        "text_spans_s": e.text_spans_s,
    }
    optional = {
        "vision_class_probs": e.vision.class_probs,
        "audio_embedding": e.audio_embedding,
        "prosody": e.prosody,
        "text_quality": e.text_quality,
    }
    arrays.update({name: value for name, value in optional.items() if value is not None})
    return arrays


def _decode(data: dict[str, np.ndarray]) -> CachedVideo | None:
    meta = json.loads(data["meta"].tobytes().decode())
    if meta.get("format_version") != FORMAT_VERSION:
        return None
    f32 = np.float32
    encoded = EncodedVideo(
        duration_s=float(meta["duration_s"]),
        frame_times_s=data["frame_times_s"].astype(np.float64),
        vision=VisionOutput(
            embeddings=data["vision_embeddings"].astype(f32),
            class_probs=data["vision_class_probs"].astype(f32) if "vision_class_probs" in data else None,
            class_names=tuple(meta["class_names"]),
            joint_space=bool(meta["joint_space"]),
        ),
        audio_embedding=data["audio_embedding"].astype(f32) if "audio_embedding" in data else None,
        prosody=data["prosody"].astype(f32) if "prosody" in data else None,
        audio_tone=_unscores(meta["audio_tone"]),
        text_embeddings=data["text_embeddings"].astype(f32),
        text_spans_s=data["text_spans_s"].astype(np.float64),
        text_sentiment=tuple(_unscores(s) for s in meta["text_sentiment"]),
        text_quality=data["text_quality"].astype(f32) if "text_quality" in data else None,
    )
    return CachedVideo(encoded=encoded, transcript=str(meta["transcript"]))
