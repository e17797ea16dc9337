"""`reelsense batch`: analyse folders, files, URLs and manifests into one results file, resumably.

One output row per input (`Prediction.to_dict()` plus `input` and `input_key`); a bad video is an
error row and the run goes on. Rows are journaled durably as they finish (see `batch_output`), so
re-running the same command after a crash or Ctrl-C analyses only what is not done yet.

What counts as done: any row whose `input_key` (absolute path + size + mtime, or the URL) is in the
journal, error rows included, so a corrupt file is not retried forever. `--retry-failed` re-runs the error
rows. One row per input is kept: before analysing, rows that are superseded (the file changed since, so
its key did; or an error row being retried) are dropped by an atomic rewrite of the journal, never by
appending a second row.
"""

from __future__ import annotations

import logging
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from models.labels import LabelSet
from pipeline.config import AnalyzerConfig
from pipeline.executor import Executor, InProcessExecutor
from pipeline.prediction import Prediction
from scripts.batch_inputs import BatchInput, BatchUsageError, discover
from scripts.batch_output import Format, Journal, Row, RowInfo, journal_path, write_table

log = logging.getLogger(__name__)

Engine = Literal["inprocess", "ray"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet", "csv")


@dataclass(frozen=True)
class BatchOptions:
    inputs: tuple[str, ...]  # folders, files, URLs, manifests (.csv/.jsonl with a path or url column)
    out: Path  # the results file
    fmt: Format = "jsonl"
    pattern: str | None = None  # a glob that replaces the media-extension filter in folders
    retry_failed: bool = False  # re-run inputs whose row is an error
    progress: bool = True  # the live bar on stderr


@dataclass
class BatchReport:
    """What one run did (counts, not rows: a batch may be huge); `exit_code` is the exit status."""

    inputs: int
    skipped: int  # already done in an earlier run
    ok: int = 0  # rows written by this run, by status
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # failed rows of this run by error code
    media_s: float = 0.0  # seconds of media in this run's ok rows
    stage_ms: dict[str, list[float]] = field(default_factory=dict)  # this run's ok rows' timings
    output: list[RowInfo] = field(default_factory=list)  # every row of the results file
    interrupted: bool = False
    wall_s: float = 0.0

    @property
    def analysed(self) -> int:
        return self.ok + self.failed

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0

    def add(self, row: Row) -> None:
        if row["status"] != "ok":
            self.failed += 1
            self.errors[str((row.get("error") or {}).get("code"))] += 1
            return
        self.ok += 1
        self.media_s += (row.get("media") or {}).get("duration_s") or 0.0
        for stage, ms in (row.get("timings_ms") or {}).items():
            self.stage_ms.setdefault(stage, []).append(float(ms))


def format_for(out: Path, fmt: str | None) -> Format:
    """The explicit --format, else the one the file name says (`.parquet`, `.csv`), else jsonl."""
    chosen = fmt or out.suffix.lower().lstrip(".")
    for known in FORMATS:
        if chosen == known:
            return known
    return "jsonl"


def executor_factory(
    config: AnalyzerConfig, engine: Engine, *, workers: int | None = None, address: str | None = None
) -> Callable[[], Executor]:
    """A factory, not an executor: when every input is already done, no model is loaded at all."""
    if engine == "inprocess":
        return lambda: InProcessExecutor(config)
    try:
        from pipeline.ray_engine import EngineConfig, RayExecutor
    except ImportError as exc:
        raise BatchUsageError(f"the Ray engine is not available ({exc}): use --engine inprocess") from exc
    return lambda: RayExecutor(config, EngineConfig(address=address, workers=workers))


def run_batch(
    options: BatchOptions,
    make_executor: Callable[[], Executor],
    labels: LabelSet | None = None,
    *,
    stdout: TextIO | None = None,
) -> BatchReport:
    """Analyse every input not done yet, journal each row as it finishes, print a summary.

    Raises BatchUsageError for unusable arguments (a manifest without a path column, a journal that
    another batch is writing) and MediaError when the models cannot load.
    """
    started = time.perf_counter()
    entries = discover(options.inputs, options.pattern)
    with Journal(journal_path(options.out, options.fmt)) as journal:
        pending = _plan(journal, entries, retry_failed=options.retry_failed)
        report = BatchReport(inputs=len(entries), skipped=len(entries) - len(pending))
        counts = f"{len(entries)} inputs, {report.skipped} already done, {len(pending)} to analyse"
        print(f"reelsense batch: {counts}", file=sys.stderr)
        try:
            with _interrupt_on_sigterm():
                _process(pending, journal, make_executor, labels, report, progress=options.progress)
        except KeyboardInterrupt:
            report.interrupted = True  # every finished row is already on disk
        if options.fmt != "jsonl":  # also when interrupted: the table then holds what is done so far
            write_table(journal.rows(), options.out, options.fmt)
        report.output = list(journal.infos)
    report.wall_s = time.perf_counter() - started
    print(format_summary(report, options), file=stdout or sys.stdout, flush=True)
    return report


def _plan(journal: Journal, entries: Sequence[BatchInput], *, retry_failed: bool) -> list[BatchInput]:
    """Drop superseded rows from the journal; return the entries that still need a row."""
    current = {entry.input: entry.item.key for entry in entries}
    last = {info.input: index for index, info in enumerate(journal.infos)}

    def keep(index: int, info: RowInfo) -> bool:
        if last[info.input] != index:  # an older row for the same input
            return False
        if info.input not in current:  # from another command writing to this file: never ours to drop
            return True
        changed = info.input_key != current[info.input]
        return not changed and not (retry_failed and info.status != "ok")

    flags = [keep(index, info) for index, info in enumerate(journal.infos)]
    if not all(flags):
        log.warning("replacing %d superseded rows in %s", flags.count(False), journal.path)
        journal.rewrite(flags)
    done = {info.input_key for info in journal.infos}
    return [entry for entry in entries if entry.item.key not in done]


def _process(
    pending: Sequence[BatchInput],
    journal: Journal,
    make_executor: Callable[[], Executor],
    labels: LabelSet | None,
    report: BatchReport,
    *,
    progress: bool,
) -> None:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = tqdm(total=len(pending), unit="video", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def record(entry: BatchInput, prediction: Prediction) -> None:
        row = {**prediction.to_dict(), "input": entry.input, "input_key": entry.item.key}
        journal.append(row)
        report.add(row)
        bar.update(1)
        bar.set_postfix_str(f"ok {report.ok}, failed {report.failed}", refresh=False)

    with bar, logging_redirect_tqdm():  # warnings print above the bar instead of through it
        for entry in pending:
            if entry.error is not None:  # known without analysing: no need to load a model for it
                record(entry, Prediction.failed(entry.item.source, entry.error))
        by_key = {entry.item.key: entry for entry in pending if entry.error is None}
        if not by_key:
            return
        executor = make_executor()
        try:
            for item, prediction in executor.run([entry.item for entry in by_key.values()], labels):
                record(by_key[item.key], prediction)
        finally:
            executor.close()


@contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """`kill` / `docker stop` stop the batch like Ctrl-C: cleanly, with the table written."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def format_summary(report: BatchReport, options: BatchOptions) -> str:
    """The end-of-run summary for people: counts, throughput, categories, time per stage."""
    wall = max(report.wall_s, 1e-9)
    output_ok = sum(info.status == "ok" for info in report.output)
    categories = Counter(info.category for info in report.output if info.status == "ok" and info.category)
    lines = [
        f"reelsense batch -> {options.out} ({options.fmt})"
        + ("  [INTERRUPTED]" if report.interrupted else ""),
        f"  inputs:           {report.inputs}",
        f"  already done:     {report.skipped} (skipped)",
        f"  analysed now:     {report.analysed} ({report.ok} ok, {report.failed} failed)",
    ]
    if report.errors:
        lines.append(
            "  failed by code:   " + ", ".join(f"{code} {n}" for code, n in report.errors.most_common())
        )
    lines += [
        f"  output rows:      {len(report.output)} ({output_ok} ok)",
        f"  wall time:        {report.wall_s:.1f} s (models loading included)",
    ]
    if report.analysed:
        rate = f"{report.analysed / wall:.2f} videos/s, {report.media_s / wall:.2f}x real time"
        lines.append(f"  media analysed:   {report.media_s:.1f} s ({rate})")
    if categories:
        lines.append(
            "  categories:       " + ", ".join(f"{name} {n}" for name, n in categories.most_common())
        )
    if report.stage_ms:
        medians = ", ".join(f"{stage} {statistics.median(ms):.0f}" for stage, ms in report.stage_ms.items())
        lines.append(f"  median ms/stage:  {medians}")
    if report.interrupted:
        left = report.inputs - report.skipped - report.analysed
        lines.append(f"  interrupted with {left} inputs left: run the same command again to finish")
    return "\n".join(lines)
