"""The demo's simulated devices: the real agent code, each on its own gpiozero MockFactory.

``DemoFleet`` is what ingest knows as its ``Simulator`` (the dashboard's Press button) and what
``POST /api/demo/devices/{id}/press`` calls. Every LED change is handed to ``on_led``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from gpiozero.pins.mock import MockFactory

from edgeorder.agent.config import AgentConfig, load_config
from edgeorder.agent.runtime import Agent
from edgeorder.protocol.device import DeviceEvent as Event
from edgeorder.protocol.values import Click

__all__ = ["DemoFleet", "UnknownSimulatedDeviceError", "parse_click"]

log = structlog.get_logger(__name__)

LedListener = Callable[[str, str, str], None]
"""``(device_id, pattern, state)``."""


class UnknownSimulatedDeviceError(KeyError):
    """No simulated device with that id in this demo."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown simulated device"


def parse_click(click: str) -> Click:
    """``single``/``double``/``long`` as a Click; ValueError naming the choices otherwise."""
    try:
        return Click(click)
    except ValueError:
        choices = ", ".join(c.value for c in Click)
        raise ValueError(f"unknown click {click!r}: choose one of {choices}") from None


class _Device:
    """One agent and the presses still waiting for the event they become."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # One entry per press, in press order; a waiter's future or None (nobody waits).
        self.presses: deque[asyncio.Future[Event] | None] = deque()

    def on_event(self, event: Event) -> None:
        if event.kind != "press" or not self.presses:
            return
        waiter = self.presses.popleft()
        if waiter is not None and not waiter.done():
            waiter.set_result(event)


class DemoFleet:
    """N agents in this process; ``start()`` runs them, ``stop()`` takes them offline."""

    def __init__(self, configs: list[AgentConfig], *, on_led: LedListener | None = None) -> None:
        self._devices: dict[str, _Device] = {}
        for config in configs:
            self._devices[config.device_id] = self._make(config, on_led)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_files(cls, paths: list[Path], *, on_led: LedListener | None = None) -> DemoFleet:
        """Agents from firmware-config files (validated by the agent's own loader)."""
        return cls([load_config(path) for path in paths], on_led=on_led)

    @staticmethod
    def _make(config: AgentConfig, on_led: LedListener | None) -> _Device:
        device_id = config.device_id

        def led(pattern: str, state: str) -> None:
            if on_led is not None:
                on_led(device_id, pattern, state)

        holder: list[_Device] = []
        agent = Agent(
            config,
            pin_factory=MockFactory(),
            on_led=led,
            on_event=lambda event: holder[0].on_event(event),
        )
        holder.append(_Device(agent))
        return holder[0]

    # -- ingest.simulator.Simulator ---------------------------------------------------------

    def simulated_devices(self) -> set[str]:
        """Ids of the devices this demo simulates."""
        return set(self._devices)

    def press(self, device_id: str, click: str) -> None:
        """Press ``device_id``'s button; UnknownSimulatedDeviceError / ValueError on bad input."""
        self._press(device_id, parse_click(click), None)

    # -- the demo's own API -----------------------------------------------------------------

    async def press_and_wait(
        self, device_id: str, click: str, *, wait_s: float = 5.0
    ) -> Event | None:
        """Press and return the event the agent stored for it (None if it took too long)."""
        waiter: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._press(device_id, parse_click(click), waiter)
        try:
            return await asyncio.wait_for(waiter, wait_s)
        except TimeoutError:
            log.warning("demo.press_unconfirmed", device_id=device_id, click=click)
            return None

    def _press(self, device_id: str, click: Click, waiter: asyncio.Future[Event] | None) -> None:
        device = self._devices.get(device_id)
        if device is None:
            known = ", ".join(sorted(self._devices)) or "none"
            raise UnknownSimulatedDeviceError(
                f"unknown simulated device {device_id!r} (this demo simulates: {known})"
            )
        device.presses.append(waiter)
        device.agent.press(click.value)
        log.info("demo.press", device_id=device_id, click=click.value)

    async def start(self) -> None:
        """Run every agent; return once each has opened its outbox and GPIO devices."""
        for device_id, device in self._devices.items():
            self._tasks.append(
                asyncio.create_task(device.agent.run(self._stop), name=f"agent-{device_id}")
            )
        if not self._tasks:
            return
        ready: asyncio.Future[list[bool]] = asyncio.ensure_future(
            asyncio.gather(*(d.agent.ready.wait() for d in self._devices.values()))
        )
        watched: list[asyncio.Future[Any]] = [ready, *self._tasks]
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():  # an agent ended before it was ready: it failed to start
            ready.cancel()
            failed = next(task for task in self._tasks if task.done())
            error = None if failed.cancelled() else failed.exception()
            await self.stop()
            raise RuntimeError(f"{failed.get_name()} failed to start: {error!r}") from error

    async def stop(self) -> None:
        """Stop every agent (each publishes presence offline and keeps its outbox)."""
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, BaseException):
                log.error("demo.agent_failed", agent=task.get_name(), error=repr(result))
        self._tasks.clear()
