"""A few readable lines per Prediction, for people at a terminal (`reelsense analyze --summary`)."""

from __future__ import annotations

from typing import Any


def summarize(prediction: dict[str, Any]) -> str:
    """The Prediction JSON object as a short human summary."""
    lines = [f"== {prediction['source']}"]
    if prediction["status"] != "ok":
        error = prediction["error"]
        return "\n".join([*lines, f"   failed: {error['message']} ({error['code']})"])
    media = prediction["media"]
    kinds = [k for k in ("video", "audio", "speech") if media.get(f"has_{k}")]
    lines.append(f"   {media['duration_s']:.1f} s, {' + '.join(kinds) or 'nothing decodable'}")
    category, sentiment = prediction["category"], prediction["sentiment"]
    runners_up = sorted(category["scores"].items(), key=lambda kv: -kv[1])[1:3]
    lines.append(
        f"   category:  {category['label']} ({category['confidence']:.0%})"
        + (f"   then {', '.join(f'{n} {p:.0%}' for n, p in runners_up)}" if runners_up else "")
    )
    by_modality = ", ".join(
        f"{name} {_top(scores)}" if scores else f"{name} -"
        for name, scores in sentiment["by_modality"].items()
    )
    lines.append(f"   sentiment: {sentiment['label']} ({sentiment['confidence']:.0%})   [{by_modality}]")
    transcript = prediction["transcript"] or {}
    if transcript.get("text"):
        lines.append(f'   said ({transcript["language"]}): "{_clip(transcript["text"], 160)}"')
    visual = prediction["evidence"].get("visual_classes") or []
    if visual:
        lines.append("   seen:      " + ", ".join(f"{c['name']} {c['probability']:.0%}" for c in visual[:3]))
    for segment in prediction["segments"]:
        lines.append(
            f"   {segment['start_s']:6.1f}-{segment['end_s']:<6.1f} {segment['category']['label']:<20} "
            f"{segment['sentiment']['label']}"
        )
    lines.append(f"   took {prediction['timings_ms'].get('total', 0) / 1000:.1f} s")
    return "\n".join(lines)


def _top(scores: dict[str, float]) -> str:
    # A tie (the uniform "no evidence" prior) reads as neutral, as SentimentScores.label does.
    label, p = max(scores.items(), key=lambda kv: (kv[1], kv[0] == "neutral"))
    return f"{label} {p:.0%}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
