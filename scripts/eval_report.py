"""The readable side-by-side report of `scripts/eval_devset.py`: summary lines, then the tables.

Input: {system name: `eval_metrics.system_metrics(...)`}, the first system being the one measured
(reelsense) and the second the reference (the naive baseline); differences are first minus second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Metrics = Mapping[str, Any]

# (summary name, how to read it from a system's metrics, format, lower is better)
SUMMARY: tuple[tuple[str, Callable[[Metrics], Any], str, bool], ...] = (
    ("category fused", lambda m: m["category"]["fused"], "rate", False),
    ("category vision-only", lambda m: m["category"]["vision"], "rate", False),
    ("category text-only", lambda m: m["category"]["text"], "rate", False),
    ("category either", lambda m: m["category"]["either"], "rate", False),
    ("sentiment polar", lambda m: m["sentiment"]["polar"], "rate", False),
    ("sentiment 3-class", lambda m: m["sentiment"]["three_class"], "rate", False),
    ("polar said neutral", lambda m: m["sentiment"]["polar_as_neutral"], "count", True),
    ("WER", lambda m: m["transcript"]["wer"], "rate", True),
)


def _num(value: Any, kind: str = "rate") -> str:
    if value is None:
        return "  -  "
    return f"{value:5.3f}" if kind == "rate" else f"{value:5d}"


def _diff(a: Any, b: Any, kind: str) -> str:
    if a is None or b is None:
        return ""
    return f"({a - b:+.3f})" if kind == "rate" else f"({a - b:+d})"


def summary_lines(systems: Mapping[str, Metrics]) -> list[str]:
    """One line per metric, e.g. `category fused  reelsense 0.812  naive 0.583  (+0.229)`."""
    (first, a), (second, b) = list(systems.items())[:2]
    lines = []
    for name, read, kind, lower in SUMMARY:
        x, y = read(a), read(b)
        note = "  (lower is better)" if lower else ""
        lines.append(
            f"{name:21s} {first} {_num(x, kind)}  {second} {_num(y, kind)}  {_diff(x, y, kind)}{note}"
        )
    return lines


def _category_table(title: str, systems: Mapping[str, Metrics], part: str) -> list[str]:
    names = list(systems)
    groups = list(next(iter(systems.values()))["category"][part])
    width = max([len(title), *(len(g) for g in groups)])
    head = "".join(f"  {n[:10]:>10s} fused vis  text" for n in names)
    lines = [f"{title:{width}s}    n{head}"]
    for group in groups:
        cells = ""
        for n in names:
            row = systems[n]["category"][part].get(group)
            cells += (
                "  "
                + " " * 10
                + "".join(f" {_num(None if row is None else row[k])}" for k in ("fused", "vision", "text"))
            )
        count = systems[names[0]]["category"][part][group]["n"]
        lines.append(f"{group:{width}s} {count:4d}{cells}")
    return lines


def _sentiment_table(title: str, systems: Mapping[str, Metrics], part: str) -> list[str]:
    names = list(systems)
    groups = list(next(iter(systems.values()))["sentiment"][part])
    width = max([len(title), *(len(g) for g in groups)])
    head = "".join(f"  {n[:10]:>10s} polar 3-cls neut" for n in names)
    lines = [f"{title:{width}s}    n polar{head}"]
    for group in groups:
        first = systems[names[0]]["sentiment"][part][group]
        cells = ""
        for n in names:
            row = systems[n]["sentiment"][part][group]
            cells += (
                "  "
                + " " * 10
                + f" {_num(row['polar'])} {_num(row['three_class'])} {row['polar_as_neutral']:4d}"
            )
        lines.append(f"{group:{width}s} {first['n']:4d} {first['n_polar']:5d}{cells}")
    return lines


def _wer_table(systems: Mapping[str, Metrics]) -> list[str]:
    names = list(systems)
    groups = list(next(iter(systems.values()))["transcript"]["by_language"])
    lines = ["WER by language (zh: per character)    n  words" + "".join(f"  {n[:10]:>10s}" for n in names)]
    for group in groups:
        first = systems[names[0]]["transcript"]["by_language"][group]
        cells = "".join(
            f"  {_num(systems[n]['transcript']['by_language'][group]['wer']):>10s}" for n in names
        )
        lines.append(f"{group:34s} {first['n']:4d} {first['words']:6d}{cells}")
    return lines


def _confusion(name: str, metrics: Metrics) -> list[str]:
    labels = metrics["category"]["confusion"]["labels"]
    matrix = metrics["category"]["confusion"]["matrix"]
    cols = "".join(f"{i:4d}" for i in range(len(labels))) + "   -"
    lines = [f"{name}: confusion (rows true, columns predicted; '-': no answer)", f"{'':28s}{cols}"]
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        if not any(row):  # no clip of this label: the columns still number every label
            continue
        lines.append(f"{i:2d} {label[:24]:24s} " + "".join(f"{v:4d}" for v in row))
    return lines


def format_report(systems: Mapping[str, Metrics], header: str) -> str:
    """The whole report as text."""
    first = next(iter(systems.values()))
    counts = (
        f"{first['clips']} clips: {first['category']['n']} with a category, {first['sentiment']['n']} "
        f"with a sentiment ({first['sentiment']['n_polar']} polar), {first['transcript']['n']} with a text"
    )
    errors = ", ".join(f"{n} {m['errors']}" for n, m in systems.items())
    parts = [
        [f"== {header} ==", counts, f"failed clips (count as wrong): {errors}"],
        summary_lines(systems),
        _category_table("category per class", systems, "per_class"),
        _category_table("category by language", systems, "by_language"),
        _category_table("category by kind", systems, "by_kind"),
        _sentiment_table("sentiment by language", systems, "by_language"),
        _sentiment_table("sentiment by kind", systems, "by_kind"),
        _wer_table(systems),
        *(_confusion(n, m) for n, m in systems.items()),
    ]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"
