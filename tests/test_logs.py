"""Repeated log lines are rate-limited (issue 11 §4): the first few of a kind per interval,
then one line with the count of the rest -- for structlog and for the standard library's
loggers (asyncio's "socket.accept() out of system resource" came ~1 M times in 40 s)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from edgeorder.logs import RepeatLimiter, Suppressed
from tests.support.proc import ROOT


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_burst_passes_the_rest_is_counted_once() -> None:
    clock = Clock()
    limiter = RepeatLimiter(burst=3, interval_s=10, clock=clock)
    verdicts = [limiter.allow("spam") for _ in range(10)]
    assert [allowed for allowed, _ in verdicts] == [True] * 3 + [False] * 7
    assert all(ended == [] for _, ended in verdicts)
    assert limiter.allow("other") == (True, [])  # kinds are counted apart
    clock.now += 10
    allowed, ended = limiter.allow("spam")
    assert allowed
    assert ended == [Suppressed("spam", 7, 10)]
    assert limiter.allow("spam") == (True, [])  # a new interval, and the summary said once


def test_a_kind_that_stopped_still_gets_its_summary() -> None:
    clock = Clock()
    limiter = RepeatLimiter(burst=1, interval_s=5, clock=clock)
    for _ in range(4):
        limiter.allow(("asyncio", "ERROR", "socket.accept() out of system resource"))
    assert limiter.due() == []  # the interval is still running
    clock.now += 5
    assert limiter.allow("something else")[1] == [
        Suppressed(("asyncio", "ERROR", "socket.accept() out of system resource"), 3, 5)
    ]
    assert limiter.due() == []


def test_flush_reports_what_was_dropped_so_far() -> None:
    limiter = RepeatLimiter(burst=2, interval_s=60, clock=Clock())
    for _ in range(5):
        limiter.allow("a")
    limiter.allow("b")
    assert limiter.flush() == [Suppressed("a", 3, 60)]
    assert limiter.flush() == []


def test_a_tight_error_loop_writes_a_bounded_log() -> None:
    """The real configuration in a real process: 20,000 lines in, a few dozen out."""
    program = textwrap.dedent(
        """
        import asyncio, logging
        import structlog
        from edgeorder.logs import configure_logging

        configure_logging("info", "json", burst=5, interval_s=60)
        log = structlog.get_logger("spam")
        for n in range(10_000):
            log.error("accept.failed", attempt=n)
        aio = logging.getLogger("asyncio")
        for n in range(10_000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                aio.error("socket.accept() out of system resource\\nsocket: fd=%d", n,
                          exc_info=True)
        log.info("done")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = out.stderr.splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert [e["event"] for e in events].count("accept.failed") == 5
    assert sum("Too many open files" in line for line in lines) == 5  # 5 tracebacks, not 10,000
    summaries = {e["kind"]: e["suppressed"] for e in events if e["event"] == "log.suppressed"}
    assert summaries == {
        "structlog error accept.failed": 9_995,
        "asyncio ERROR socket.accept() out of system resource": 9_995,
    }
    assert events[-1]["event"] in ("done", "log.suppressed")
    assert len(lines) < 100
