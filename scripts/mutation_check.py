"""Does the suite bite? Apply deliberate breakages one at a time to a copy of the tree and run the tests
that should catch each one.

    python -m scripts.mutation_check            # every mutation
    python -m scripts.mutation_check --only metrics-drop-counter --keep

Each mutation edits source text in a temporary copy of the working tree (tracked and untracked, not
ignored, files; the working tree itself is never touched), runs its test files with `pytest -x` there (cwd
first on sys.path, so the copy's code is imported), and is "caught" when a test fails. Prints a table and
exits 1 if any mutation was missed, 2 if one no longer applies (its text is not in the source any more:
update the mutation), 3 if --baseline finds the unmutated tests failing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    edits: tuple[tuple[str, str, str], ...]  # (file, exact text that occurs once, its replacement)
    tests: tuple[str, ...]  # pytest node ids or files that should fail


MUTATIONS = (
    Mutation(
        "frame-sampler-frame-0",
        "the frame sampler returns frame 0 for every sample",
        (
            (
                "pipeline/frames.py",
                "    targets = sample_times(video.duration_s, config)\n",
                "    targets = sample_times(video.duration_s, config) * 0.0\n",
            ),
        ),
        ("tests/test_frames.py::test_variable_frame_rate_uses_presentation_timestamps",),
    ),
    Mutation(
        "vision-encoder-zeros",
        "the vision encoder returns zero embeddings and class probabilities",
        (
            (
                "models/vision.py",
                "            embeddings=_stack(embeddings, self.dim),\n",
                "            embeddings=_stack(embeddings, self.dim) * 0,\n",
            ),
            (
                "models/vision.py",
                "            class_probs=_stack(probs, classes) if classes else None,\n",
                "            class_probs=_stack(probs, classes) * 0 if classes else None,\n",
            ),
        ),
        ("tests/test_analyze.py::test_heldout_vision_alone_names_the_pictures",),
    ),
    Mutation(
        "metrics-drop-counter",
        "the metrics path drops the HTTP request counter",
        (
            (
                "service/metrics.py",
                "        self.requests.labels(route, method, str(status)).inc()\n",
                "        self.requests.labels(route, method, str(status))\n",
            ),
        ),
        ("tests/test_service.py::test_metrics_count_what_the_requests_did",),
    ),
    Mutation(
        "language-forced-english",
        "language detection is forced to English (the fallback)",
        (
            (
                "pipeline/transcribe.py",
                "        if probs and probs[0][1] >= cfg.min_language_probability:\n",
                "        if False:\n",
            ),
        ),
        ("tests/test_transcribe.py::test_spanish_speech_is_detected_as_spanish",),
    ),
    Mutation(
        "fine-tuned-head-ignored",
        "the fine-tuned (few-shot) head's adjustment is skipped: the zero-shot head's answer stands",
        (
            (
                "models/predictor.py",
                "            category_logits, sentiment_logits = self.fewshot.adjust("
                "category_logits, sentiment_logits, pooled)\n",
                "            pass\n",
            ),
        ),
        (
            "tests/test_finetune.py::test_few_shot_head_learns_opaque_labels_on_unseen_clips",
            "tests/test_finetune.py::test_analyze_with_a_head_uses_its_labels_segments_and_explains_itself",
        ),
    ),
)


def tree_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a commit of the working tree would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return [name for name in listed.decode().split("\0") if name and (root / name).is_file()]


def copy_tree(root: Path, dest: Path) -> None:
    for name in tree_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def apply(mutation: Mutation, tree: Path) -> None:
    for file, old, new in mutation.edits:
        path = tree / file
        text = path.read_text()
        if text.count(old) != 1:
            raise LookupError(f"{mutation.name}: {file} holds {text.count(old)} copies of {old.strip()!r}")
        path.write_text(text.replace(old, new))


def run_tests(mutation: Mutation, tree: Path) -> tuple[bool, str]:
    """(caught, what failed): pytest -x on the mutation's tests in the mutated copy."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
        cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    if done.returncode == 0:
        return False, "MISSED"
    if done.returncode in (1,) and failed:
        return True, failed[0]
    # Collection errors, usage errors, crashes: the mutation broke something, but say so plainly.
    tail = done.stdout.strip().splitlines()[-1:] or done.stderr.strip().splitlines()[-1:]
    return True, f"pytest exit {done.returncode}: {tail[0] if tail else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", action="append", help="run this mutation only (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies (paths printed)")
    parser.add_argument(
        "--baseline", action="store_true", help="first run the chosen tests unmutated: they must pass"
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.only and len(chosen) != len(args.only):
        parser.error(f"unknown mutation; known: {', '.join(m.name for m in MUTATIONS)}")
    if args.baseline:  # a test that fails without any mutation would "catch" every one
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        failing, detail = run_tests(Mutation("baseline", "none", (), tests), ROOT)
        if failing:
            print(f"the unmutated tree fails its own tests: {detail}", file=sys.stderr)
            return 3
    results: list[tuple[Mutation, str, str]] = []
    stale = False
    for mutation in chosen:
        tree = Path(tempfile.mkdtemp(prefix=f"reelsense-mutant-{mutation.name}-"))
        try:
            copy_tree(ROOT, tree)
            try:
                apply(mutation, tree)
            except LookupError as exc:
                results.append((mutation, "STALE", str(exc)))
                stale = True
                continue
            caught, detail = run_tests(mutation, tree)
            results.append((mutation, "caught" if caught else "MISSED", detail))
            print(f"{mutation.name}: {'caught' if caught else 'MISSED'} ({detail})", file=sys.stderr)
        finally:
            if args.keep:
                print(f"kept {tree}", file=sys.stderr)
            else:
                shutil.rmtree(tree, ignore_errors=True)
    width = max(len(m.name) for m, _, _ in results)
    print(f"{'mutation':{width}}  result  test that failed")
    for mutation, verdict, detail in results:
        print(f"{mutation.name:{width}}  {verdict:6}  {detail if verdict != 'MISSED' else '-'}")
    if stale:
        return 2
    return 1 if any(verdict == "MISSED" for _, verdict, _ in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
