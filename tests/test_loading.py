"""Models load at the same time, except those that import transformers (its lazy imports race)."""

from __future__ import annotations

import threading

from pipeline.loading import ModelLoader


def test_independent_loads_overlap() -> None:
    first_started, second_started = threading.Event(), threading.Event()

    def first() -> bool:
        first_started.set()
        return second_started.wait(10)  # only true if the second load runs meanwhile

    def second() -> bool:
        second_started.set()
        return first_started.wait(10)

    with ModelLoader() as loader:
        results = loader.submit(first), loader.submit(second)
    assert [r.result() for r in results] == [True, True]


def test_transformers_loads_run_one_after_another() -> None:
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        first_in.set()
        release.wait(10)

    with ModelLoader() as loader:
        loader.submit(first, uses_transformers=True)
        loader.submit(second_in.set, uses_transformers=True)
        independent = loader.submit(lambda: "loaded")
        assert first_in.wait(10)
        assert independent.result(timeout=10) == "loaded"  # the other loads do not queue behind it
        assert not second_in.is_set()  # the second transformers load waits for the first
        release.set()
    assert second_in.is_set()
