"""Label sets: the categories a video is scored against, the default taxonomy or the user's own.

A label is embedded as the normalised mean of its prompts' text embeddings. Because category scores are
similarities to these embeddings (never a fixed classifier row), any label set works without retraining.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from core.errors import ErrorCode, MediaError
from models.types import F32

MAX_LABELS = 256  # a bigger set is almost always a mistake (a file of sentences), and scores get flat
MAX_LABEL_CHARS = 120

TextEmbedder = Callable[[Sequence[str]], F32]  # texts -> (N, D) float32, L2-normalised


@dataclass(frozen=True)
class LabelSet:
    names: tuple[str, ...]
    prompts: tuple[tuple[str, ...], ...]  # per label, the texts whose embeddings are averaged
    source: str  # "taxonomy:<name>", "custom" or "file:<path>"

    def embed(self, embed_texts: TextEmbedder) -> F32:
        """(L, D) float32 label embeddings, L2-normalised; one text-encoder call for all prompts."""
        flat = [prompt for prompts in self.prompts for prompt in prompts]
        vectors = embed_texts(flat)
        out = np.empty((len(self.names), vectors.shape[1]), dtype=np.float32)
        start = 0
        for row, prompts in enumerate(self.prompts):
            mean = vectors[start : start + len(prompts)].mean(axis=0)
            out[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            start += len(prompts)
        return out


def default_taxonomy() -> LabelSet:
    """The short-video taxonomy shipped in `models/data/taxonomy.json` (15 categories)."""
    text = resources.files("models").joinpath("data/taxonomy.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return _from_entries(data["labels"], source=f"taxonomy:{data['name']}")


def custom_labels(names: Sequence[str]) -> LabelSet:
    """A label set from bare names, e.g. `--labels cats,dogs`; each is also prompted as a video topic."""
    return _from_entries([{"name": name} for name in names], source="custom")


def labels_from_file(path: str | Path) -> LabelSet:
    """One label per line (.txt), or JSON: a list of names, or {"labels": [{"name", "prompts"?}]}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(ErrorCode.INVALID_LABELS, f"cannot read the labels file {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MediaError(ErrorCode.INVALID_LABELS, f"{path} is not valid JSON: {exc}") from exc
        entries = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise MediaError(ErrorCode.INVALID_LABELS, f'{path}: expected a list or {{"labels": [...]}}')
        normalised = [entry if isinstance(entry, dict) else {"name": entry} for entry in entries]
        return _from_entries(normalised, source=f"file:{path.name}")
    names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return _from_entries([{"name": name} for name in names], source=f"file:{path.name}")


def _from_entries(entries: Sequence[dict[str, object]], source: str) -> LabelSet:
    names: list[str] = []
    prompts: list[tuple[str, ...]] = []
    for entry in entries:
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise MediaError(ErrorCode.INVALID_LABELS, f"a label must be a non-empty string, got {name!r}")
        name = " ".join(name.split())
        if len(name) > MAX_LABEL_CHARS:
            raise MediaError(
                ErrorCode.INVALID_LABELS, f"label too long (> {MAX_LABEL_CHARS} chars): {name!r}"
            )
        given = entry.get("prompts") or [name, f"a video about {name}"]
        if not isinstance(given, list) or not all(isinstance(p, str) and p.strip() for p in given):
            raise MediaError(ErrorCode.INVALID_LABELS, f"prompts of {name!r} must be non-empty strings")
        names.append(name)
        prompts.append(tuple(given))
    if len(names) < 2:
        raise MediaError(ErrorCode.INVALID_LABELS, "a label set needs at least two labels")
    if len(names) > MAX_LABELS:
        raise MediaError(ErrorCode.INVALID_LABELS, f"at most {MAX_LABELS} labels, got {len(names)}")
    lowered = [n.lower() for n in names]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    if duplicates:
        raise MediaError(ErrorCode.INVALID_LABELS, f"duplicate labels: {', '.join(duplicates)}")
    return LabelSet(names=tuple(names), prompts=tuple(prompts), source=source)
