"""``edgeorder bench --scaling --db-url URL``: ingest on SQLite, then 1..N workers on PostgreSQL.

Each configuration is one full run of the flood phase (its own Mosquitto, order core, ingest
workers and fresh database: a scratch database made on the server of ``--db-url`` and dropped
afterwards), checked against the order core like every bench run. The table puts ordered/s
and each process's CPU milliseconds per event side by side, with the ratios to SQLite's single
worker and to PostgreSQL's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeorder.bench.progress import Progress
from edgeorder.bench.run import BenchConfig, run_bench
from edgeorder.bench.services import scratch_database

__all__ = ["render_scaling", "run_scaling"]


def run_scaling(config: BenchConfig, progress: Progress, *, max_workers: int) -> dict[str, Any]:
    """SQLite with one worker, then PostgreSQL with 1..``max_workers``: the flood only."""
    if config.db_url is None:
        raise ValueError("--scaling needs --db-url (a PostgreSQL server to make databases on)")
    base = dataclasses.replace(
        config,
        skip_raw=True,
        skip_sustain=True,
        skip_latency=True,
        skip_burst=True,
        work_dir=None,
        profile=False,
    )
    runs: list[dict[str, Any]] = []
    progress.note("scaling: SQLite, one worker")
    sqlite = dataclasses.replace(base, db_url=None, workers=1)
    runs.append(_one("sqlite", 1, run_bench(sqlite, progress)))
    for workers in range(1, max_workers + 1):
        progress.note(f"scaling: PostgreSQL, {workers} worker(s)")
        with scratch_database(config.db_url, keep=config.keep) as url:
            result = run_bench(dataclasses.replace(base, db_url=url, workers=workers), progress)
        runs.append(_one("postgres", workers, result))
    return {"runs": runs}


def _one(backend: str, workers: int, result: dict[str, Any]) -> dict[str, Any]:
    flood = result.get("flood", {})
    cpu = flood.get("cpu_ms_per_event", {})
    check = result.get("verification", {})
    return {
        "backend": backend,
        "workers": workers,
        "ordered_per_s": flood.get("ordered_per_s"),
        "accepted_per_s": flood.get("accepted_per_s"),
        "complete": flood.get("complete"),
        "cpu_ms_per_event": cpu,
        "ingest_cpu_ms_per_event": round(
            sum(v for k, v in cpu.items() if k.startswith("ingest")), 3
        ),
        "p99_ordered_ms": (flood.get("publish_to_ordered") or {}).get("p99_ms"),
        "lost": check.get("lost"),
        "duplicates": check.get("duplicates"),
        "telemetry": result.get("telemetry"),
        "error": result.get("error"),
    }


def _fmt(value: object, digits: int = 1) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def render_scaling(result: dict[str, Any]) -> str:
    """The scaling table: one line per configuration."""
    runs = result.get("runs", [])
    sqlite = next((r for r in runs if r["backend"] == "sqlite"), None)
    pg1 = next((r for r in runs if r["backend"] == "postgres" and r["workers"] == 1), None)
    header = (
        "backend    workers  ordered/s  x sqlite  x pg-1  ingest ms/event: each -> total  "
        "postgres  ordercore  mosquitto  p99->ordered  lost/dup"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        cpu = run["cpu_ms_per_event"]
        each = " ".join(f"{v:.2f}" for k, v in sorted(cpu.items()) if k.startswith("ingest"))
        lines.append(
            f"{run['backend']:<10} {run['workers']:>7}  {_fmt(run['ordered_per_s']):>9}  "
            f"{_ratio(run, sqlite):>8}  {_ratio(run, pg1):>6}  "
            f"{each + ' -> ' + _fmt(run['ingest_cpu_ms_per_event'], 2):>30}  "
            f"{_fmt(cpu.get('postgres'), 2):>8}  {_fmt(cpu.get('ordercore'), 2):>9}  "
            f"{_fmt(cpu.get('mosquitto'), 2):>9}  {_fmt(run['p99_ordered_ms']):>12}  "
            f"{_fmt(run['lost'])}/{_fmt(run['duplicates'])}"
        )
    for run in runs:
        telemetry = run.get("telemetry")
        if telemetry:
            per = telemetry["cpu_ms_per_message"]
            ingest = sum(v for k, v in per.items() if k.startswith("ingest"))
            lines.append(
                f"telemetry, {run['backend']} x{run['workers']}: "
                f"{_fmt(telemetry['recorded_per_s'])}/s recorded, ingest {ingest:.3f} ms/message"
                f", postgres {_fmt(per.get('postgres'), 3)} ms/message"
            )
    return "\n".join(lines)


def _ratio(run: dict[str, Any], base: dict[str, Any] | None) -> str:
    if base is None or not base.get("ordered_per_s") or run.get("ordered_per_s") is None:
        return "-"
    return f"{run['ordered_per_s'] / base['ordered_per_s']:.2f}"
