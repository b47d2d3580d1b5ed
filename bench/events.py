"""The payloads a simulated fleet publishes: real ``protocol.Event`` JSON, unique ULIDs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ulid import ULID

from edgeorder.protocol import Channel, Click, Event, EventKind, device_topic, encode, utcnow

__all__ = ["BENCH_FW", "PlannedEvent", "device_ids", "plan_events"]

BENCH_FW = "bench"


@dataclass(frozen=True)
class PlannedEvent:
    """One event ready to publish: which device, on which topic, with which bytes."""

    device_index: int
    device_id: str
    topic: str
    event_id: str
    payload: bytes


def device_ids(count: int, prefix: str = "bench") -> list[str]:
    """``bench-0001`` ... : valid device ids, sorted the same way they are numbered."""
    if count < 1:
        raise ValueError("need at least one device")
    width = max(4, len(str(count)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, count + 1)]


def plan_events(devices: Sequence[str], count: int, seqs: list[int]) -> list[PlannedEvent]:
    """``count`` single-press events spread round-robin over ``devices``.

    ``seqs`` holds each device's next sequence number and is advanced in place, so several
    phases of one run keep every device's ``seq`` increasing as a real device does.
    """
    topics = [device_topic(d, Channel.EVENTS) for d in devices]
    planned = []
    for i in range(count):
        idx = i % len(devices)
        event = Event(
            event_id=str(ULID()),
            device_id=devices[idx],
            seq=seqs[idx],
            kind=EventKind.PRESS,
            click=Click.SINGLE,
            ts=utcnow(),
            fw=BENCH_FW,
        )
        seqs[idx] += 1
        planned.append(PlannedEvent(idx, devices[idx], topics[idx], event.event_id, encode(event)))
    return planned
