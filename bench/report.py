"""The end-of-run table (pure text from the result document) and the JSON file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["render_table", "write_json"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _ratio(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def _ms(value: object) -> str:
    return f"{value:.3f} ms" if isinstance(value, float) else "-"


def _latency(doc: dict[str, Any] | None) -> str:
    if not doc:
        return "-"
    return f"p50 {doc['p50_ms']:.1f} / p95 {doc['p95_ms']:.1f} / p99 {doc['p99_ms']:.1f} ms"


def _rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    raw, flood = result.get("raw", {}), result.get("flood", {})
    latency, burst = result.get("latency", {}), result.get("burst", {})
    sustain = result.get("sustain", {})
    summary, check = result.get("summary", {}), result.get("verification", {})
    rows = [
        ("raw ceiling (broker -> counting subscriber)", _fmt(raw.get("events_per_s"), "/s")),
        (
            "  load generator CPU per event (raw phase)",
            _ms(raw.get("generator_cpu_ms_per_event")),
        ),
        ("end to end, published -> ordered", _fmt(flood.get("ordered_per_s"), "/s")),
        (
            "  backlog drain, 10th-90th pct of the flood",
            _fmt(flood.get("sustained_ordered_per_s"), "/s"),
        ),
        (
            f"sustain: {_fmt(sustain.get('offered_per_s'), '/s')} offered at a constant pace",
            f"{_fmt(sustain.get('sustained_ordered_per_s'), '/s')} ordered, kept up: "
            f"{_fmt(sustain.get('kept_up'))}, p99 -> ordered "
            f"{_fmt((sustain.get('publish_to_ordered') or {}).get('p99_ms'), ' ms')}",
        ),
        ("ingest accepted", _fmt(flood.get("accepted_per_s"), "/s")),
        ("ingest/raw (accepted)", _ratio(summary.get("ingest_raw_ratio"))),
        ("end to end/raw (ordered)", _ratio(summary.get("ordered_raw_ratio"))),
        ("flood publish -> accepted", _latency(flood.get("publish_to_accepted"))),
        ("flood publish -> ordered", _latency(flood.get("publish_to_ordered"))),
        (
            f"latency phase at {_fmt(latency.get('target_rate_per_s'), '/s')}: -> accepted",
            _latency(latency.get("publish_to_accepted")),
        ),
        ("latency phase: -> ordered", _latency(latency.get("publish_to_ordered"))),
        (
            f"burst of {_fmt(burst.get('events'))} with order core down: accepted",
            _fmt(burst.get("accepted_per_s"), "/s"),
        ),
        (
            "burst drain once order core is back",
            f"{_fmt(burst.get('drain_per_s'), '/s')} in {_fmt(burst.get('drain_s'), ' s')} "
            f"(first order after {_fmt(burst.get('first_ordered_after_s'), ' s')})",
        ),
    ]
    for name, cpu_ms in flood.get("cpu_ms_per_event", {}).items():
        rows.append((f"flood CPU per event: {name}", f"{cpu_ms:.2f} ms"))
    for name, usage in result.get("resources", {}).items():
        rows.append(
            (f"{name}: CPU / peak RSS", f"{usage['cpu_s']:.1f} s / {usage['peak_rss_mb']:.0f} MB")
        )
    rows += [
        ("events checked against the order core", _fmt(check.get("events"))),
        ("lost", _fmt(check.get("lost"))),
        ("duplicates", _fmt(check.get("duplicates"))),
    ]
    for target, met in summary.get("targets", {}).items():
        rows.append((f"target {target}", _fmt(met)))
    return rows


def render_table(result: dict[str, Any]) -> str:
    """A two-column text table of the headline figures and the targets."""
    rows = _rows(result)
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def write_json(
    result: dict[str, Any], out_dir: Path | None = None, now: datetime | None = None
) -> Path:
    """Write ``<out_dir>/<UTC timestamp>.json`` (default bench/results/); return its path."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    folder = out_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path
