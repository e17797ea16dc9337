"""Stage progress of one analysis, for whoever wants to show it (the service's jobs; nothing else yet),
and the place an analysis learns it must stop (cancelled, or past its deadline): every stage boundary
checks `should_stop`, and Whisper checks it between segments.

An analysis reports `(stage, fraction)` at each stage boundary. The fractions are rough shares of a
typical video's time on CPU (Whisper dominates: ~70 % of a clip with speech, see scripts/bench_analyze.py),
so a progress bar moves at a believable pace; they are not promises.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.errors import MediaError

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]
StopFn = Callable[[], MediaError | None]  # why the analysis must stop now (cancelled, too slow), or None

# Where each stage starts, as a fraction of the whole analysis.
STAGE_START = {
    "fetch": 0.02,
    "probe": 0.08,
    "decode": 0.12,
    "transcribe": 0.2,
    "text": 0.8,
    "fuse": 0.92,
}


class ProgressReporter:
    """Forwards stage starts to a callback. Thread-safe and never backwards, because the frames and the
    audio paths report concurrently; a failing callback is logged, never raised into the analysis."""

    def __init__(self, callback: ProgressFn | None = None, should_stop: StopFn | None = None) -> None:
        self._callback = callback
        self._should_stop = should_stop
        self._lock = threading.Lock()
        self._reached = 0.0

    def check(self) -> None:
        """Raise the reason to stop, if there is one (a MediaError: the analysis fails with it)."""
        reason = self._should_stop() if self._should_stop is not None else None
        if reason is not None:
            raise reason

    def stopping(self) -> bool:
        """True once the analysis should stop: for loops inside a stage (Whisper's segments)."""
        return self._should_stop is not None and self._should_stop() is not None

    def stage(self, name: str) -> None:
        """A stage starts: stop here if asked to, else report it."""
        self.check()
        fraction = STAGE_START[name]
        if self._callback is None:
            return
        with self._lock:
            if fraction <= self._reached:
                return
            self._reached = fraction
            try:
                self._callback(name, fraction)
            except Exception:  # progress is a courtesy: the analysis goes on without it
                log.exception("progress callback failed at stage %s", name)
