"""Executors: how many videos are analysed, and where. One interface, two engines.

- `InProcessExecutor`: one `Analyzer` in this process, one video after another (tests, one file, the
  baseline of the batch benchmark).
- `pipeline.ray_engine.RayExecutor`: an `Analyzer` in each of a few Ray actors (one per CPU), several
  videos in flight, on this machine or a cluster. Only that module imports ray.

Both yield `(item, Prediction)` pairs as videos finish (not necessarily in input order), and never raise
for a bad input: a failed video is a Prediction with `status: "error"`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.errors import MediaError
from models.labels import LabelSet
from pipeline.config import AnalyzerConfig
from pipeline.prediction import Prediction, internal_error

if TYPE_CHECKING:
    from pipeline.analyze import Analyzer, EncodedMedia


@dataclass(frozen=True)
class WorkItem:
    """One input to analyse. `key` identifies it across runs (the batch uses it to resume)."""

    source: str  # a local path or an http(s) URL
    key: str


class Executor(Protocol):
    def run(
        self, items: Iterable[WorkItem], labels: LabelSet | None = None
    ) -> Iterator[tuple[WorkItem, Prediction]]:
        """Analyse `items`, yielding each with its Prediction as it finishes."""
        ...

    def encode(self, items: Iterable[WorkItem]) -> Iterator[tuple[WorkItem, EncodedMedia | MediaError]]:
        """Every encoder and no head (fine-tuning's features); a failed item yields its MediaError."""
        ...

    def close(self) -> None:
        """Release workers and models."""
        ...


class InProcessExecutor:
    """Sequential, in this process: the models load once and every item reuses them."""

    def __init__(self, config: AnalyzerConfig) -> None:
        from pipeline.analyze import Analyzer  # the models: only when this engine is used

        self.analyzer = Analyzer(config)

    def run(
        self, items: Iterable[WorkItem], labels: LabelSet | None = None
    ) -> Iterator[tuple[WorkItem, Prediction]]:
        for item in items:
            yield item, self.analyzer.analyze(item.source, labels)

    def encode(self, items: Iterable[WorkItem]) -> Iterator[tuple[WorkItem, EncodedMedia | MediaError]]:
        for item in items:
            yield item, encode_source(self.analyzer, item.source)

    def close(self) -> None:
        """Nothing to release: the models go with the object."""


def encode_source(analyzer: Analyzer, source: str) -> EncodedMedia | MediaError:
    """Fetch and encode one source (every encoder, no head); a failure is returned, not raised. Both
    engines call this, so their features are the same."""
    from pipeline.fetch import open_source

    try:
        with open_source(source, analyzer.config.media.fetch) as local:
            return analyzer.encode_file(local.path)
    except MediaError as exc:
        return exc
    except Exception as exc:  # a bug: this item fails, the others go on
        return internal_error(exc)
