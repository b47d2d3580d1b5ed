"""The one place where other threads meet the agent's worker: a bounded queue on its loop.

gpiozero edge callbacks and paho callbacks run on their own threads and only ``post`` an item
(``loop.call_soon_threadsafe``); a simulated press from a script's thread ``submit``s it and
waits while the queue is full (back-pressure for floods); on the loop itself an item is
``offer``ed without ever blocking. What does not fit is counted and logged, never raised
into a foreign thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from edgeorder.agent.errors import AgentNotRunningError
from edgeorder.protocol.values import Click

__all__ = ["QUEUE_SIZE", "Handoff", "SensorValue", "SimClick"]

log = structlog.get_logger(__name__)

QUEUE_SIZE = 1024
SUBMIT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SimClick:
    """A classified click from a script (``Agent.press``)."""

    click: Click
    at: float


@dataclass(frozen=True)
class SensorValue:
    """A sensor reading from a script (``Agent.sensor``)."""

    name: str
    value: float
    at: float


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Handoff:
    """The worker's input queue; ``bind`` it to the worker's loop while it runs."""

    def __init__(self, device_id: str, size: int = QUEUE_SIZE) -> None:
        self.device_id = device_id
        self.queue: asyncio.Queue[Any] = asyncio.Queue(size)
        self.overflow = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def offer(self, item: object) -> None:
        """Queue ``item`` from the loop's own thread; counted and dropped when full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflow += 1
            log.warning("agent.input_queue_full", device_id=self.device_id, item=repr(item))

    def post(self, item: object) -> None:
        """Queue ``item`` from any thread (gpiozero, paho); dropped once the loop is gone."""
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self.offer, item)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def submit(self, item: object) -> None:
        """Queue ``item`` from any thread, waiting while the queue is full; on the loop's
        own thread it never blocks. Raises AgentNotRunningError when the agent is not."""
        loop = self._loop
        if loop is None:
            raise AgentNotRunningError(f"agent {self.device_id} is not running")
        if loop.is_running() and _running_loop() is loop:
            self.offer(item)
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self.queue.put(item), loop)
            future.result(timeout=SUBMIT_TIMEOUT_S)
        except RuntimeError as exc:  # loop closed during shutdown
            raise AgentNotRunningError(f"agent {self.device_id} stopped") from exc
