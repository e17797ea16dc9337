"""Load a process's models at the same time: most of a load is file reads, decompression and native code
that release the GIL, so independent models overlap instead of queueing.

Loaders that may import transformers run one after another in a lane of their own: its lazy imports are
not thread-safe (two threads importing it at once got "cannot import name 'AutoConfig'").
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")
LOAD_THREADS = 4  # Whisper, vision, the text encoders and the sentiment model: the independent loads


class ModelLoader:
    """`submit(load)` starts a load in a thread and returns its future; leaving the `with` block waits for
    every load (a failed one raises from its `result()`, after the others have finished)."""

    def __init__(self, threads: int = LOAD_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="load")
        self._transformers_lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-transformers")

    def submit(self, load: Callable[[], T], *, uses_transformers: bool = False) -> Future[T]:
        return (self._transformers_lane if uses_transformers else self._pool).submit(load)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._transformers_lane.shutdown(wait=True)

    def __enter__(self) -> ModelLoader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
