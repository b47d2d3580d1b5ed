"""What ``/healthz`` says: is every part of the chain working right now, and if not, why.

``evaluate`` is a pure function of what the service observed (``Observed``); ``observe`` gathers
that from the running parts, each with a bound on how long it may take, so a stuck part makes
the answer "degraded" instead of making the health check hang. ``PlatformMonitor`` keeps what
the order platform's last answers said, and probes its host when nothing was sent lately.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yarl import URL

__all__ = [
    "Check",
    "Health",
    "Observed",
    "PlatformMonitor",
    "PlatformState",
    "Thresholds",
    "bounded",
    "evaluate",
]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Health:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "degraded",
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class PlatformState:
    reachable: bool
    detail: str


@dataclass(frozen=True)
class Observed:
    """Everything ``evaluate`` looks at, gathered at ``now``."""

    now: datetime
    mqtt_connected: bool
    platform: PlatformState
    oldest_pending: datetime | None
    """When the oldest order still waiting for the platform was buffered (None: none waits)."""
    failing_messages: int
    """Messages whose write failed and that wait for a retry (``Router.failing()``)."""
    database: str | None
    """Why the writer is not committing (None: it committed a probe job)."""


@dataclass(frozen=True)
class Thresholds:
    buffer_age_s: float
    """An order buffered for longer than this makes ingest degraded."""


def evaluate(seen: Observed, limits: Thresholds) -> Health:
    """The checks, in a fixed order; each says what it saw even when it is fine."""
    return Health(
        (
            Check(
                "mqtt",
                seen.mqtt_connected,
                "subscribed to the broker" if seen.mqtt_connected else "broker link is down",
            ),
            Check("order_platform", seen.platform.reachable, seen.platform.detail),
            _buffer(seen, limits),
            Check(
                "messages",
                seen.failing_messages == 0,
                f"{seen.failing_messages} message(s) failing to be recorded, retrying"
                if seen.failing_messages
                else "no message is failing",
            ),
            Check(
                "database",
                seen.database is None,
                seen.database or "the writer commits",
            ),
        )
    )


def _buffer(seen: Observed, limits: Thresholds) -> Check:
    if seen.oldest_pending is None:
        return Check("buffer", True, "no order waits for the platform")
    age = (seen.now - seen.oldest_pending).total_seconds()
    ok = age <= limits.buffer_age_s
    detail = f"oldest buffered order waits for {age:.0f} s (limit {limits.buffer_age_s:.0f} s)"
    return Check("buffer", ok, detail)


class PlatformMonitor:
    """Is the order platform answering? The outbox worker reports every answer it gets
    (``answered``) and every transient failure (``failed``); when it has reported nothing for
    ``fresh_s`` (no orders flowing), ``state()`` opens a TCP connection to the platform's host
    instead -- at most one every ``probe_interval_s``, each bounded by ``probe_timeout_s``."""

    def __init__(
        self,
        base_url: str,
        *,
        fresh_s: float = 120.0,
        probe_interval_s: float = 15.0,
        probe_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[[str, int], Awaitable[object]] | None = None,
    ) -> None:
        url = URL(base_url)
        self._host = url.host or "127.0.0.1"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._fresh_s, self._interval_s = fresh_s, probe_interval_s
        self._timeout_s, self._clock = probe_timeout_s, clock
        self._connect = connect or _tcp_connect
        self._reported: tuple[float, PlatformState] | None = None
        self._probed: tuple[float, PlatformState] | None = None
        self._probe: asyncio.Task[PlatformState] | None = None

    def answered(self) -> None:
        self._reported = (self._clock(), PlatformState(True, "the platform answers"))

    def failed(self, reason: str) -> None:
        self._reported = (self._clock(), PlatformState(False, f"the last call failed: {reason}"))

    async def state(self) -> PlatformState:
        now = self._clock()
        if self._reported is not None and now - self._reported[0] <= self._fresh_s:
            return self._reported[1]
        if self._probed is not None and now - self._probed[0] <= self._interval_s:
            return self._probed[1]
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._run_probe())
        return await asyncio.shield(self._probe)

    async def _run_probe(self) -> PlatformState:
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._connect(self._host, self._port)
            state = PlatformState(True, f"no recent orders; {where} accepts connections")
        except TimeoutError:
            state = PlatformState(
                False, f"unreachable: no connection to {where} within {self._timeout_s:g} s"
            )
        except OSError as exc:
            state = PlatformState(
                False, f"unreachable: cannot connect to {where}: {exc.strerror or exc}"
            )
        self._probed = (self._clock(), state)
        return state


async def _tcp_connect(host: str, port: int) -> None:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()


async def bounded(what: Awaitable[Any], timeout_s: float, name: str) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, why)`` when ``what`` failed or took over ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await what, None
    except TimeoutError:
        return None, f"{name} did not answer within {timeout_s:g} s"
    except Exception as exc:
        return None, f"{name} failed: {exc}"
