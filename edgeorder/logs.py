"""structlog set-up, done once by the ``edgeorder`` command before any subcommand runs.

Repeated lines are rate-limited: a tight error loop (the ~1 M "Too many open files" lines
asyncio wrote in 40 s when descriptors ran out) must not fill the disk or bury the one line
that matters. Each kind of line (structlog: level and event; standard library: logger, level
and the message's first line) may appear ``burst`` times per ``interval_s``; the rest of that
interval is dropped and counted, and one ``log.suppressed`` line then says how many were (when
the interval ends, or at exit).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["ProtocolErrorLogger", "RepeatLimiter", "Suppressed", "configure_logging"]

DEFAULT_BURST = 20
DEFAULT_INTERVAL_S = 10.0
SUPPRESSED_EVENT = "log.suppressed"


@dataclass(frozen=True)
class Suppressed:
    """``count`` lines of kind ``key`` were dropped in the ``interval_s`` that just ended."""

    key: Hashable
    count: int
    interval_s: float


@dataclass
class _Window:
    started: float
    seen: int = 0


class RepeatLimiter:
    """The first ``burst`` lines of each kind per ``interval_s``; a count of the rest.

    ``allow(key)`` says whether this line may be written and returns, once each, the
    summaries of windows that have ended with lines dropped (of any kind: a kind that stops
    repeating still gets its summary at the next line of any kind). At most ``max_kinds``
    kinds are tracked; past that, every ended window is forgotten. Thread-safe.
    """

    def __init__(
        self,
        burst: int = DEFAULT_BURST,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 4096,
    ) -> None:
        self.burst, self.interval_s = burst, interval_s
        self._clock, self._max_kinds = clock, max_kinds
        self._windows: dict[Hashable, _Window] = {}
        self._next_sweep = float("-inf")
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> tuple[bool, list[Suppressed]]:
        now = self._clock()
        with self._lock:
            ended = self._sweep(now) if now >= self._next_sweep else []
            window = self._windows.get(key)
            if window is None or now - window.started >= self.interval_s:
                if window is not None and window.seen > self.burst:
                    ended.append(self._summary(key, window))
                window = self._windows[key] = _Window(now)
            window.seen += 1
            return window.seen <= self.burst, ended

    def due(self) -> list[Suppressed]:
        """Summaries of every ended window that dropped lines (each given once)."""
        with self._lock:
            return self._sweep(self._clock())

    def flush(self) -> list[Suppressed]:
        """Summaries of every window that dropped lines so far, ended or not (at exit)."""
        with self._lock:
            out = [self._summary(k, w) for k, w in self._windows.items() if w.seen > self.burst]
            self._windows.clear()
            return out

    def _sweep(self, now: float) -> list[Suppressed]:
        """Summaries of ended windows that dropped lines; ended windows are forgotten."""
        self._next_sweep = now + self.interval_s
        ended: list[Suppressed] = []
        for key, window in list(self._windows.items()):
            if now - window.started >= self.interval_s:
                if window.seen > self.burst:
                    ended.append(self._summary(key, window))
                del self._windows[key]
        if len(self._windows) >= self._max_kinds:
            self._windows.clear()
        return ended

    def _summary(self, key: Hashable, window: _Window) -> Suppressed:
        return Suppressed(key, window.seen - self.burst, self.interval_s)


class _Summaries:
    """Writes ``log.suppressed`` lines through structlog (themselves never rate-limited)."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("edgeorder.logs")

    def __call__(self, summaries: list[Suppressed]) -> None:
        for s in summaries:
            self._log.warning(
                SUPPRESSED_EVENT,
                kind=" ".join(str(part) for part in s.key) if isinstance(s.key, tuple) else s.key,
                suppressed=s.count,
                interval_s=s.interval_s,
            )


class _Limit:
    """A ``RepeatLimiter`` that writes its summaries: at the next line after an interval
    ended, from a timer when the log went quiet meanwhile, and at exit."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        self._limiter = limiter
        self._summaries = _Summaries()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def check(self, key: Hashable) -> bool:
        allowed, ended = self._limiter.allow(key)
        self._summaries(ended)
        if not allowed:
            self._arm()
        return allowed

    def flush(self) -> None:
        self._summaries(self._limiter.flush())

    def _arm(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self._limiter.interval_s, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self._summaries(self._limiter.due())


class _RateLimitProcessor:
    """structlog processor: drop a line past its kind's burst (``structlog.DropEvent``)."""

    def __init__(self, limit: _Limit) -> None:
        self._limit = limit

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        name = str(event.get("event", ""))
        if name != SUPPRESSED_EVENT and not self._limit.check(("structlog", method, name)):
            raise structlog.DropEvent
        return event


class _RateLimitFilter(logging.Filter):
    """The same limit for the standard library's loggers (asyncio, aiohttp, amqtt)."""

    def __init__(self, limit: _Limit) -> None:
        super().__init__()
        self._limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        first_line = str(record.msg).split("\n", 1)[0][:120]
        return self._limit.check((record.name, record.levelname, first_line))


def configure_logging(
    level: str | None = None,
    fmt: str | None = None,
    *,
    burst: int | None = None,
    interval_s: float | None = None,
) -> None:
    """JSON lines by default; a console renderer when stderr is a TTY (or ``fmt="console"``).

    ``level`` and ``fmt`` fall back to ``EDGEORDER_LOG_LEVEL`` / ``EDGEORDER_LOG_FORMAT``;
    ``burst`` (lines of one kind per interval, 0: no limit) and ``interval_s`` to
    ``EDGEORDER_LOG_BURST`` / ``EDGEORDER_LOG_BURST_INTERVAL_S`` (default 20 per 10 s).
    """
    level_name = (level or os.environ.get("EDGEORDER_LOG_LEVEL") or "info").upper()
    numeric = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    fmt = (
        fmt
        or os.environ.get("EDGEORDER_LOG_FORMAT")
        or ("console" if sys.stderr.isatty() else "json")
    )
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    limiter = _limiter(burst, interval_s)
    limit = None if limiter is None else _Limit(limiter)
    first: list[structlog.typing.Processor] = [] if limit is None else [_RateLimitProcessor(limit)]
    structlog.configure(
        processors=[
            *first,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (amqtt, aiohttp) log through the standard library: keep them quiet by default.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _RateLimitFilter)]:
            handler.removeFilter(old)  # configured again: one limit, not two
        if limit is not None:
            handler.addFilter(_RateLimitFilter(limit))


def _limiter(burst: int | None, interval_s: float | None) -> RepeatLimiter | None:
    lines = burst if burst is not None else _env_number("EDGEORDER_LOG_BURST", DEFAULT_BURST)
    interval = (
        interval_s
        if interval_s is not None
        else _env_number("EDGEORDER_LOG_BURST_INTERVAL_S", DEFAULT_INTERVAL_S)
    )
    if lines <= 0 or interval <= 0:
        return None
    return RepeatLimiter(int(lines), float(interval))


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        print(f"edgeorder: ignoring {name}={raw!r} (not a number)", file=sys.stderr)
        return default


class ProtocolErrorLogger(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger for one app: ``web.Application(handler_args={"logger": ...})``.

    A request that is not valid HTTP (a NUL or DEL byte in a header, a line too long) is
    answered 400 by aiohttp's parser before any handler runs, and aiohttp logs it at ERROR
    with a traceback. That is the client's fault, not the server's: it is logged once at INFO
    (``bad_http_request`` with the reason) and counted in ``rejected``. A connection reset
    under a request (the client left, or ``edgeorder.httpserver`` closed a body that never
    finished) is one INFO line, ``http_connection_lost``. Every other error keeps its ERROR and
    traceback. Both services use it (the order core and ingest).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        super().__init__(logger or logging.getLogger("aiohttp.server"), {})
        self.rejected = 0
        self._events = structlog.get_logger("edgeorder.http")

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError  # the server extra only

        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            self.rejected += 1
            lines = str(exc.message).strip().splitlines() if exc.message else []
            peer = args[0] if args else None
            self._events.info(
                "bad_http_request",
                status=exc.code,
                reason=lines[0] if lines else "bad request",
                peer=peer,
            )
            return
        if isinstance(exc, ConnectionResetError):
            # the connection went away under a request: the client's doing, or the server's own
            # limits (a body that never finished, an eviction to make room): no traceback
            self._events.info("http_connection_lost", reason=str(exc)[:200])
            return
        self.logger.exception(msg, *args, **kwargs)
