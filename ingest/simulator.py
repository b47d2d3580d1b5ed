"""The seam through which the dashboard presses a simulated device (``edgeorder demo``).

ingest never imports the agent: the demo hands ingest an object with this shape.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Simulator"]


class Simulator(Protocol):
    def simulated_devices(self) -> set[str]:
        """Ids of the devices this process simulates."""

    def press(self, device_id: str, click: str) -> None:
        """Press ``device_id``'s button (``single``/``double``/``long``); KeyError if unknown."""
