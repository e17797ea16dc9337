"""Executors: how many videos are analysed, and where. One interface, two engines.

- `InProcessExecutor`: one `Analyzer` in this process, `config.concurrent_clips` videos at a time in
  threads (default one after another: tests, one file, the baseline of the batch benchmark).
- `pipeline.ray_engine.RayExecutor`: an `Analyzer` in each of a few Ray actors (one per two CPUs, two
  videos at a time each), on this machine or a cluster. Only that module imports ray.

Both yield `(item, Prediction)` pairs as videos finish (not necessarily in input order), and never raise
for a bad input: a failed video is a Prediction with `status: "error"`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

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


Result = TypeVar("Result")


class InProcessExecutor:
    """In this process: the models load once and every item reuses them. `config.concurrent_clips` items
    are analysed at once, in threads over the one Analyzer (1: one after another, in input order)."""

    def __init__(self, config: AnalyzerConfig) -> None:
        from pipeline.analyze import Analyzer  # the models: only when this engine is used

        self.analyzer = Analyzer(config)
        self.clips_at_once = max(1, config.concurrent_clips)
        if self.clips_at_once > 1:
            self.analyzer.warm_up()  # every model's first call once, before two threads could race into it

    def run(
        self, items: Iterable[WorkItem], labels: LabelSet | None = None
    ) -> Iterator[tuple[WorkItem, Prediction]]:
        return self._each(items, lambda item: self.analyzer.analyze(item.source, labels))

    def encode(self, items: Iterable[WorkItem]) -> Iterator[tuple[WorkItem, EncodedMedia | MediaError]]:
        return self._each(items, lambda item: encode_source(self.analyzer, item.source))

    def _each(
        self, items: Iterable[WorkItem], work: Callable[[WorkItem], Result]
    ) -> Iterator[tuple[WorkItem, Result]]:
        """`work` on each item, `clips_at_once` at a time; each (item, result) as it finishes. Neither
        call raises for bad input, so a future's result is never an exception."""
        if self.clips_at_once == 1:
            for item in items:
                yield item, work(item)
            return
        queue = iter(items)
        pending: dict[Future[Result], WorkItem] = {}
        with ThreadPoolExecutor(self.clips_at_once, thread_name_prefix="clip") as pool:
            while True:
                while len(pending) < self.clips_at_once and (next_item := next(queue, None)) is not None:
                    pending[pool.submit(work, next_item)] = next_item
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()

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
