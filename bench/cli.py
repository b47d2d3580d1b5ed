"""``edgeorder bench``: measure the whole chain on this machine and print the figures."""

from __future__ import annotations

import argparse
import sys
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from edgeorder.bench.progress import Progress
from edgeorder.bench.report import RESULTS_DIR, render_table, write_json
from edgeorder.bench.run import BenchConfig, machine, run_bench
from edgeorder.bench.scaling import render_scaling, run_scaling
from edgeorder.bench.services import scratch_database

__all__ = ["QUICK", "build_config", "main"]

FULL = {
    "devices": 200,
    "events": 20_000,
    "sustain_events": 10_000,
    "latency_events": 5_000,
    "burst": 10_000,
    "timeout": 300.0,
}
QUICK = {
    "devices": 200,
    "events": 3_000,
    "sustain_events": 2_000,
    "latency_events": 1_000,
    "burst": 2_000,
    "timeout": 40.0,
}

DESCRIPTION = """\
Start a Mosquitto (the project's config), `edgeorder ordercore` and `edgeorder ingest` as
separate processes, register N simulated devices, and measure in one run:

  raw      the broker ceiling: the same events to a subscriber that only counts
  flood    events as fast as the broker acknowledges (or --rate): published -> ordered/s,
           p50/p95/p99 of publish -> accepted and publish -> ordered
  sustain  the flood's ordered rate offered at a constant pace: does the chain keep up?
  latency  half the flood's ordered rate: the latency an unsaturated system gives
  burst    the order core stopped, a burst accepted and buffered, the order core
           started again: drain rate and time

then check every event against the order core (each has exactly one order of its device:
lost and duplicates), and report CPU seconds and peak RSS of each process. A progress bar
goes to stderr, a table to stdout, and the whole result to bench/results/<UTC time>.json.
"""

EPILOG = """\
exit status: 0 when every event was ordered exactly once; 1 when some were lost or
duplicated or a phase did not finish; 2 on bad options. Timing targets are reported, never
enforced.
ingest on PostgreSQL: --db-url postgresql://USER@HOST:PORT/DB names a server on which the bench
makes a fresh database for the run (its user needs CREATEDB) and drops it afterwards (--keep
keeps it); --workers N runs N ingest workers on one shared subscription. --scaling runs the
flood for SQLite (one worker) and for 1..--workers workers on PostgreSQL, one run each, and
prints the scaling table.

examples:
  edgeorder bench --quick                  # about 30-60 s
  edgeorder bench --quick --workers 2 --db-url postgresql://postgres@127.0.0.1:5432/postgres
  edgeorder bench --scaling --workers 3 --events 10000 --db-url postgresql://postgres@127.0.0.1/postgres
  edgeorder bench                          # 200 devices, 20,000 + 5,000 + 10,000 events
  edgeorder bench --devices 5 --events 50 --sustain-events 20 --latency-events 20 --burst 50
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help=f"a short run (under 60 s): {QUICK['events']} flood, {QUICK['sustain_events']} "
        f"sustain, {QUICK['latency_events']} latency, {QUICK['burst']} burst events; explicit "
        "options still win",
    )
    add("--devices", type=_positive_int, help=f"simulated devices (default {FULL['devices']})")
    add(
        "--events",
        type=_positive_int,
        help=f"events of the raw and flood phases (default {FULL['events']})",
    )
    add(
        "--sustain-events",
        type=int,
        help=f"events of the sustain phase, 0 to skip (default {FULL['sustain_events']})",
    )
    add(
        "--latency-events",
        type=int,
        help=f"events of the latency phase, 0 to skip (default {FULL['latency_events']})",
    )
    add("--burst", type=int, help=f"events of the burst phase, 0 to skip (default {FULL['burst']})")
    add(
        "--rate",
        type=_positive_float,
        help="target events/s of the flood phase (default: as fast as acknowledged)",
    )
    add(
        "--window",
        type=_positive_int,
        default=1000,
        help="publishes in flight without PUBACK, over all connections (default 1000)",
    )
    add(
        "--connections",
        type=_positive_int,
        default=4,
        help="MQTT connections the simulated devices share (default 4)",
    )
    add(
        "--timeout",
        type=_positive_float,
        help=f"seconds a phase may take before it is reported incomplete "
        f"(default {FULL['timeout']:.0f}, --quick {QUICK['timeout']:.0f})",
    )
    add("--no-raw", action="store_true", help="skip the raw ceiling phase")
    add(
        "--workers",
        type=_positive_int,
        default=1,
        help="ingest workers sharing the device stream (more than 1 needs --db-url; with "
        "--scaling: the most workers to measure, default 3 there)",
    )
    add(
        "--db-url",
        help="postgresql://USER@HOST:PORT/DB: run ingest on PostgreSQL, in a database the bench "
        "makes on that server (default: SQLite in the work directory)",
    )
    add(
        "--telemetry",
        type=int,
        default=0,
        help="after the other phases, this many telemetry heartbeats: their rate and CPU per "
        "message (default 0: skipped)",
    )
    add(
        "--scaling",
        action="store_true",
        help="flood on SQLite (1 worker), then on PostgreSQL with 1..--workers workers; "
        "prints the scaling table (needs --db-url)",
    )
    add(
        "--ingest-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `edgeorder ingest` (repeat; e.g. --ingest-arg=--log-level ...)",
    )
    add(
        "--work-dir",
        type=Path,
        help="keep the broker, order core and ingest data and logs here (default: a "
        "temporary directory, removed afterwards)",
    )
    add("--keep", action="store_true", help="keep the temporary work directory")
    add(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="folder of the JSON result (default bench/results/)",
    )
    add("--no-progress", action="store_true", help="no progress bar on stderr")
    add(
        "--profile",
        action="store_true",
        help="sample ingest and the order core with py-spy during the flood phase (needs "
        "`pip install py-spy`; the stacks are kept in WORK_DIR/profile/, the work directory is "
        "kept, the top functions go in the JSON)",
    )
    return parser


def build_config(args: argparse.Namespace) -> BenchConfig:
    """Options -> config: explicit values, else --quick's, else the full run's."""
    base = QUICK if args.quick else FULL

    def pick(name: str, key: str) -> object:
        value = getattr(args, name)
        return base[key] if value is None else value

    latency_events = int(str(pick("latency_events", "latency_events")))
    sustain_events = int(str(pick("sustain_events", "sustain_events")))
    burst = int(str(pick("burst", "burst")))
    return BenchConfig(
        devices=int(str(pick("devices", "devices"))),
        events=int(str(pick("events", "events"))),
        latency_events=max(latency_events, 0),
        sustain_events=max(sustain_events, 0),
        burst=max(burst, 0),
        rate=args.rate,
        window=args.window,
        connections=args.connections,
        phase_timeout=float(str(pick("timeout", "timeout"))),
        work_dir=args.work_dir,
        keep=args.keep,
        ingest_args=list(args.ingest_arg),
        skip_raw=args.no_raw,
        skip_latency=latency_events <= 0,
        skip_sustain=sustain_events <= 0,
        skip_burst=burst <= 0,
        profile=args.profile,
        workers=args.workers,
        db_url=args.db_url,
        telemetry=max(args.telemetry, 0),
    )


def main(argv: list[str], prog: str) -> int:
    """Run the benchmark; print the table; write the JSON. See ``--help``."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if (args.workers > 1 or args.scaling) and not args.db_url:
        parser.error("--workers above 1 and --scaling need --db-url (one shared database)")
    config = build_config(args)
    started = datetime.now(UTC)
    progress = Progress(enabled=not args.no_progress)
    result = {
        "version": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "command": " ".join([prog, *argv]),
        "machine": machine(),
    }
    try:
        if args.scaling:
            most = args.workers if args.workers > 1 else 3
            result.update(run_scaling(config, progress, max_workers=most))
        elif config.db_url is not None:
            with scratch_database(config.db_url, keep=config.keep) as url:
                result.update(run_bench(replace(config, db_url=url), progress))
        else:
            result.update(run_bench(config, progress))
    except Exception as exc:  # a failed run still leaves its JSON and a clear reason
        result["error"] = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, RuntimeError | OSError | TimeoutError):
            traceback.print_exc(file=sys.stderr)
        print(f"{prog}: {result['error']}", file=sys.stderr)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    path = write_json(result, args.out, started)
    if "error" not in result:
        print(render_scaling(result) if args.scaling else render_table(result))
    print(f"result: {path}")
    return 0 if _correct(result) else 1


def _correct(result: dict[str, object]) -> bool:
    runs = result.get("runs")
    if isinstance(runs, list):  # --scaling: every configuration exactly once, complete
        return bool(runs) and all(
            r.get("lost") == 0 and r.get("duplicates") == 0 and r.get("complete") for r in runs
        )
    check = result.get("verification")
    phases = [result.get(p) for p in ("flood", "sustain", "latency", "burst")]
    complete = all(p.get("complete") for p in phases if isinstance(p, dict))
    return (
        isinstance(check, dict)
        and check.get("lost") == 0
        and check.get("duplicates") == 0
        and complete
    )
