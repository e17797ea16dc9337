"""`reelsense batch` end to end: one row per input, errors that do not stop the run, manifests, flat
tables, resume without redoing or duplicating work, and a batch killed hard (SIGKILL) mid-run."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.labels import LabelSet
from pipeline.config import AnalyzerConfig, FrameConfig, MediaConfig
from pipeline.executor import InProcessExecutor, WorkItem
from pipeline.prediction import Prediction
from scripts.batch import BatchOptions, BatchUsageError, format_for, run_batch
from scripts.batch_inputs import discover
from scripts.batch_output import COLUMNS, Journal
from tests.labelled_clips import LabelledClip, make_clip

ROOT = Path(__file__).resolve().parents[1]
# Short clips (one sentence, ~2 s) keep the batch runs quick; the content is still clear enough to check.
SHORT_CLIPS = (
    LabelledClip("cat", "chelsea", "I love my sweet cat.", "animals & pets", "positive"),
    LabelledClip("espresso", "coffee", "This coffee is delicious.", "food & cooking", "positive"),
    LabelledClip("horse", "horse", "The horses at the farm are lovely.", "animals & pets", "positive"),
    LabelledClip("motorbike", "stereo_motorcycle", "My motorcycle is fast.", "vehicles", "positive"),
    LabelledClip("rocket", "rocket", "The rocket launch was great.", "technology", "positive"),
    LabelledClip("forest", "grass", "The forest is green and calm.", "nature", "positive"),
)
CLIP_NAMES = tuple(clip.name for clip in SHORT_CLIPS)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Clips of known content, made once (make_clip leaves its .wav beside them: copy the mp4s)."""
    folder = tmp_path_factory.mktemp("batch-clips")
    return {clip.name: make_clip(clip, folder) for clip in SHORT_CLIPS}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-model-cache")


class SharedExecutor:
    """One in-process Analyzer for the in-process tests: the models load once for the module."""

    def __init__(self, config: AnalyzerConfig) -> None:
        self.inner = InProcessExecutor(config)

    def run(
        self, items: Iterable[WorkItem], labels: LabelSet | None = None
    ) -> Iterator[tuple[WorkItem, Prediction]]:
        return self.inner.run(items, labels)

    def close(self) -> None:
        """Kept for the next test."""


@pytest.fixture(scope="module")
def executor(cache: Path) -> SharedExecutor:
    media = MediaConfig(frames=FrameConfig(num_frames=8))
    return SharedExecutor(AnalyzerConfig(media=media, device="cpu", cache_dir=str(cache)))


def _batch_cmd(cache: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "scripts.cli", "batch", "--cache-dir", str(cache), "--device", "cpu",
            "--frames", "8", *args]  # fmt: skip


def _batch(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        _batch_cmd(cache, *args), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _rows(path: Path) -> list[dict]:
    data = path.read_text(encoding="utf-8")
    assert data == "" or data.endswith("\n"), "every row ends with its newline"
    return [json.loads(line) for line in data.splitlines()]


def _summary_count(stdout: str, label: str) -> int:
    line = next(line for line in stdout.splitlines() if line.strip().startswith(label))
    return int(line.split(":", 1)[1].split()[0])


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], cache: Path, media) -> dict:
    """A folder: 3 good clips (one in a subfolder), a truncated mp4, an empty file, and files to ignore."""
    folder = tmp_path_factory.mktemp("batch-folder")
    (folder / "sub").mkdir()
    shutil.copy(clips["cat"], folder / "cat.mp4")
    shutil.copy(clips["espresso"], folder / "sub" / "espresso.mov")  # the extension decides, not the codec
    shutil.copy(clips["forest"], folder / "forest.mkv")
    shutil.copy(media("no_moov.mp4"), folder / "broken.mp4")
    (folder / "empty.webm").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video")
    (folder / "._cat.mp4").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork: hidden, skipped
    out = folder.parent / f"{folder.name}-results.jsonl"
    done = _batch(cache, str(folder), "--out", str(out), "--engine", "inprocess")
    return {"folder": folder, "out": out, "done": done, "rows": _rows(out)}


def test_folder_gives_one_row_per_video_and_goes_on_after_bad_files(folder_run: dict) -> None:
    done, rows, folder = folder_run["done"], folder_run["rows"], folder_run["folder"]
    assert done.returncode == 1, done.stderr  # some inputs failed
    assert len(rows) == 5
    by_name = {Path(row["input"]).name: row for row in rows}
    assert set(by_name) == {"cat.mp4", "espresso.mov", "forest.mkv", "broken.mp4", "empty.webm"}
    assert {name for name, row in by_name.items() if row["status"] == "ok"} == {
        "cat.mp4", "espresso.mov", "forest.mkv"
    }  # fmt: skip
    assert by_name["empty.webm"]["error"]["code"] == "empty_file"
    assert by_name["broken.mp4"]["error"]["code"] == "invalid_media"  # as tests/test_bad_input.py says
    assert by_name["espresso.mov"]["input"] == str(folder / "sub" / "espresso.mov")
    assert by_name["cat.mp4"]["category"]["label"] == "animals & pets"
    assert all(row["input_key"].startswith(row["input"] + "|") for row in rows)
    assert _summary_count(done.stdout, "analysed now") == 5
    assert "failed by code" in done.stdout and "empty_file 1" in done.stdout
    assert "categories:" in done.stdout and "median ms/stage" in done.stdout
    assert "ok 3, failed 2" in done.stderr  # the progress bar's postfix


def test_rerun_skips_everything_done_and_retry_failed_replaces_error_rows(
    folder_run: dict, cache: Path, executor: SharedExecutor
) -> None:
    folder, out, first = folder_run["folder"], folder_run["out"], folder_run["rows"]
    again = _batch(cache, str(folder), "--out", str(out), "--engine", "inprocess", "--no-progress")
    assert again.returncode == 0, again.stderr  # nothing failed in this run: nothing ran
    assert _summary_count(again.stdout, "already done") == 5
    assert _summary_count(again.stdout, "analysed now") == 0
    assert _rows(out) == first

    # A replaced file has a new key (size + mtime) and is redone; --retry-failed redoes the error rows.
    os.utime(folder / "cat.mp4", ns=(time.time_ns(), time.time_ns()))
    # In this process (the same run_batch as the CLI's) to reuse the loaded models.
    options = BatchOptions(inputs=(str(folder),), out=out, retry_failed=True, progress=False)
    report = run_batch(options, lambda: executor)
    assert report.skipped == 2 and report.analysed == 3 and report.exit_code == 1
    rows = _rows(out)
    assert len(rows) == 5 and len({row["input"] for row in rows}) == 5, "one row per input, never two"
    old_ids = {Path(row["input"]).name: row["id"] for row in first}
    new_ids = {Path(row["input"]).name: row["id"] for row in rows}
    changed = {name for name in new_ids if new_ids[name] != old_ids[name]}
    assert changed == {"cat.mp4", "broken.mp4", "empty.webm"}


def test_manifests_csv_and_jsonl_give_a_row_per_line(
    tmp_path: Path, clips: dict[str, Path], executor
) -> None:
    (tmp_path / "videos").mkdir()
    shutil.copy(clips["horse"], tmp_path / "videos" / "horse.mp4")
    manifest_csv = tmp_path / "list.csv"
    manifest_csv.write_text("title,path\nhorse,videos/horse.mp4\nnothing,\ngone,videos/missing.mp4\n")
    manifest_jsonl = tmp_path / "list.jsonl"
    manifest_jsonl.write_text(
        json.dumps({"path": str(tmp_path / "videos" / "horse.mp4")}) + "\n"  # the same file again: one row
        + "{not json\n\n"
        + json.dumps({"url": "ftp://example.com/clip.mp4"}) + "\n"
        + json.dumps({"name": "no path"}) + "\n"
    )  # fmt: skip
    out = tmp_path / "out.jsonl"
    options = BatchOptions(inputs=(str(manifest_csv), str(manifest_jsonl)), out=out, progress=False)
    report = run_batch(options, lambda: executor)
    rows = _rows(out)
    assert report.exit_code == 1 and len(rows) == 6
    codes = sorted((row["error"] or {}).get("code", "ok") for row in rows)
    assert codes == [
        "invalid_source",
        "invalid_source",
        "invalid_source",
        "not_found",
        "ok",
        "unsupported_scheme",
    ]
    horse = next(row for row in rows if row["status"] == "ok")
    assert horse["input"] == str(tmp_path / "videos" / "horse.mp4")  # relative to the manifest's folder
    assert {row["input"] for row in rows if row["error"] and "manifest row" in row["error"]["message"]} == {
        f"{manifest_csv}:3", f"{manifest_jsonl}:2", f"{manifest_jsonl}:5"
    }  # fmt: skip


def test_parquet_and_csv_are_flat_tables_with_one_row_per_input(
    tmp_path: Path, clips: dict[str, Path], executor
) -> None:
    import pyarrow.parquet as pq  # a required dependency: missing, the test fails

    shutil.copy(clips["motorbike"], tmp_path / "bike.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    parquet, table_csv = tmp_path / "out" / "results.parquet", tmp_path / "out" / "results.csv"
    for out in (parquet, table_csv):
        options = BatchOptions(inputs=(str(tmp_path),), out=out, fmt=format_for(out, None), progress=False)
        run_batch(options, lambda: executor)

    table = pq.read_table(parquet)
    assert table.num_rows == 2 and table.column_names == [name for name, _ in COLUMNS]
    parquet_rows = {Path(row["input"]).name: row for row in table.to_pylist()}
    with table_csv.open(newline="") as file:
        csv_rows = {Path(row["input"]).name: row for row in csv.DictReader(file)}
    assert set(parquet_rows) == set(csv_rows) == {"bike.mp4", "empty.mp4"}
    bike = parquet_rows["bike.mp4"]
    assert bike["status"] == "ok" and bike["category"] == "vehicles" and bike["has_speech"] is True
    assert bike["width"] == 320 and bike["duration_s"] > 1 and bike["language"] == "en"
    assert set(json.loads(bike["category_scores"])) >= {"vehicles"} and json.loads(bike["segments"])
    assert parquet_rows["empty.mp4"]["error_code"] == csv_rows["empty.mp4"]["error_code"] == "empty_file"
    assert csv_rows["bike.mp4"]["category"] == "vehicles"
    assert sorted(p.name for p in parquet.parent.iterdir()) == [
        "results.csv", "results.csv.journal.jsonl", "results.parquet", "results.parquet.journal.jsonl"
    ]  # fmt: skip  # no temporary or lock files left


@contextlib.contextmanager
def hanging_origin() -> Iterator[tuple[str, threading.Event]]:
    """A loopback URL that answers (404) only once the event is set: an input the batch cannot finish."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            release.wait(300)
            self.send_error(404)

    class Origin(ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self) -> None:
            socketserver.TCPServer.server_bind(self)  # skip HTTPServer's reverse DNS lookup (getfqdn)

    server = Origin(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/late.mp4", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_batch_killed_hard_resumes_without_losing_or_duplicating_rows(
    tmp_path: Path, clips: dict[str, Path], cache: Path, executor: SharedExecutor
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in CLIP_NAMES:
        shutil.copy(clips[name], folder / f"{name}.mp4")
    out = tmp_path / "results.jsonl"
    with hanging_origin() as (url, release):
        # The URL comes last and never answers: the batch cannot finish before it is killed, whatever
        # the machine's speed, so "killed mid-run" holds by construction (no window on the clock).
        args = [str(folder), url, "--out", str(out), "--engine", "inprocess", "--no-progress"]
        process = subprocess.Popen(
            _batch_cmd(cache, *args, "--allow-network", "127.0.0.0/8"),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while not (out.exists() and out.read_bytes().count(b"\n") >= 2):
                assert process.poll() is None, "the batch ended before it could be killed"
                assert time.monotonic() < deadline, "no rows after 300 s"
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        release.set()
    before = _rows(out)
    assert 2 <= len(before) <= len(CLIP_NAMES) and url not in {row["input"] for row in before}
    with out.open("ab") as file:
        file.write(b'{"id": "torn-by-a-crash", "source": "/x')  # as if killed mid-write

    # The same inputs again, run in this process (run_batch is what the CLI calls) to save a model load;
    # its fetch allows no loopback, so the URL now fails fast, keyed by the URL itself.
    report = run_batch(BatchOptions(inputs=(str(folder), url), out=out, progress=False), lambda: executor)
    assert report.skipped == len(before)
    rows = _rows(out)
    assert rows[: len(before)] == before, "finished rows are kept as they were"
    by_input = {row["input"]: row for row in rows}
    assert len(rows) == len(by_input) == len(CLIP_NAMES) + 1, "each input once"
    assert sorted(Path(i).name for i in by_input if i != url) == sorted(f"{n}.mp4" for n in CLIP_NAMES)
    assert all(row["status"] == "ok" for i, row in by_input.items() if i != url)
    assert by_input[url]["status"] == "error" and by_input[url]["error"]["code"] == "url_forbidden"


def test_a_second_batch_on_the_same_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with Journal(out), pytest.raises(BatchUsageError, match="another reelsense batch"):
        run_batch(
            BatchOptions(inputs=(str(tmp_path),), out=out, progress=False), lambda: pytest.fail("no executor")
        )


def test_folders_are_walked_in_order_and_glob_overrides_extensions(tmp_path: Path) -> None:
    for name in ("b.mp4", "a.MOV", "c.gif", "sub/d.mp4", ".hidden/e.mp4", "f.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    names = [Path(entry.input).relative_to(tmp_path).as_posix() for entry in discover([str(tmp_path)])]
    assert names == ["a.MOV", "b.mp4", "sub/d.mp4"]
    assert [Path(e.input).name for e in discover([str(tmp_path)], "*.gif")] == ["c.gif"]
    missing = discover([str(tmp_path / "nope.mp4")])
    assert missing[0].error is not None and missing[0].error.code.value == "not_found"


def test_the_ray_engine_writes_the_same_rows(tmp_path: Path, clips: dict[str, Path], cache: Path) -> None:
    shutil.copy(clips["espresso"], tmp_path / "espresso.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    out = tmp_path / "results.csv"
    done = _batch(
        cache, str(tmp_path), "--out", str(out), "--engine", "ray", "--workers", "1", "--no-progress"
    )
    assert done.returncode == 1, done.stderr
    with out.open(newline="") as file:
        rows = {Path(row["input"]).name: row for row in csv.DictReader(file)}
    assert set(rows) == {"espresso.mp4", "empty.mp4"}
    assert (
        rows["espresso.mp4"]["category"] == "food & cooking"
        and rows["empty.mp4"]["error_code"] == "empty_file"
    )


def test_the_journal_cuts_a_torn_last_line_and_keeps_a_whole_one(tmp_path: Path) -> None:
    row = {"id": "a", "status": "ok", "input": "/v/a.mp4", "input_key": "/v/a.mp4|1|2"}
    whole = tmp_path / "whole.jsonl"
    whole.write_text(json.dumps(row))  # a complete row that lost only its newline
    torn = tmp_path / "torn.jsonl"
    torn.write_text(json.dumps(row) + "\n" + '{"id": "b", "stat')
    only_torn = tmp_path / "only.jsonl"
    only_torn.write_text('{"id": "b"')
    for path, expected in ((whole, [row]), (torn, [row]), (only_torn, [])):
        with Journal(path) as journal:
            assert list(journal.rows()) == expected
            assert [info.input for info in journal.infos] == [r["input"] for r in expected]
        assert path.read_text() == "".join(json.dumps(r) + "\n" for r in expected)
