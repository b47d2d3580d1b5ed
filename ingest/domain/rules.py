"""Business rules of ingest: pure functions, no I/O (ARCHITECTURE.md, Business rules).

``evaluate`` turns one valid event of a known device into a ``Decision``: what to tell the
device, and which order-outbox operation (if any) to record in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edgeorder import protocol as p
from edgeorder.ingest.domain.devices import Device

__all__ = [
    "CODES",
    "DEFAULT_FUTURE_S",
    "REASON_DISABLED",
    "REASON_FUTURE",
    "REASON_NOTHING_TO_CANCEL",
    "REASON_NO_ACTION",
    "REASON_PAYLOAD_CONFLICT",
    "REASON_STALE",
    "REASON_THROTTLED",
    "REASON_UNKNOWN_DEVICE",
    "CancelTarget",
    "Decision",
    "advances",
    "evaluate",
    "is_future",
    "is_stale",
    "within",
]

REASON_UNKNOWN_DEVICE = "unknown device"
REASON_DISABLED = "device disabled"
REASON_STALE = "stale event"
REASON_FUTURE = "event timestamp is in the future"
REASON_PAYLOAD_CONFLICT = "event_id reused with a different payload"
# The two a device tells apart on its LED ("nothing to do") are the protocol's.
REASON_NOTHING_TO_CANCEL = p.NOTHING_TO_CANCEL
REASON_NO_ACTION = p.NO_ACTION
REASON_THROTTLED = "an order for this product is still in flight"
REASON_CANCEL_TOO_EARLY = "the last order is still being placed: press again once it is ordered"

# Rejection codes (metrics labels, ``rejections.code``) for the reasons above.
CODES = {
    REASON_UNKNOWN_DEVICE: "unknown_device",
    REASON_DISABLED: "disabled_device",
    REASON_STALE: "stale",
    REASON_FUTURE: "future",
    REASON_PAYLOAD_CONFLICT: "payload_conflict",
    REASON_NOTHING_TO_CANCEL: "nothing_to_cancel",
    REASON_CANCEL_TOO_EARLY: "cancel_too_early",
}

Op = Literal["create", "cancel"]

DEFAULT_FUTURE_S = 3600
"""How far ahead of ingest's clock an event's timestamp may be (``future_event_s``)."""


@dataclass(frozen=True)
class CancelTarget:
    """The device's latest order, the only one a long press may cancel ("cancel last"):
    never an older one in its place, which the person did not mean.

    ``order_id`` None: that press's order is still being placed (its create is pending), so
    there is nothing to cancel yet. ``cancellable`` False: it is cancelled, being cancelled,
    past ``paid`` or settled."""

    order_id: str | None
    event_id: str
    created_at: datetime
    cancellable: bool = True


@dataclass(frozen=True)
class Decision:
    """``state`` goes to the device now; ``op`` (when set) becomes an order-outbox row."""

    state: p.State
    action: p.ReorderAction | p.CancelLastAction | p.NoAction
    reason: str | None = None
    op: Op | None = None
    test: bool = False
    cancel: CancelTarget | None = None


# Limits are compared as seconds, never as ``now - timedelta(limit)``: that raises
# OverflowError for a limit of 1e15 s (or near year 1), and a rule must never raise.


def is_stale(event_ts: datetime, now: datetime, stale_after_s: float) -> bool:
    """True if the device's timestamp is older than the configured limit."""
    return (now - event_ts).total_seconds() > stale_after_s


def is_future(event_ts: datetime, now: datetime, future_after_s: float) -> bool:
    """True if the device's timestamp is further ahead of ``now`` than the configured limit
    (a clock that far ahead is broken; and an event dated in year 9999 would never go
    stale, so the past's bound would not hold for it)."""
    return (event_ts - now).total_seconds() > future_after_s


def within(then: datetime, now: datetime, window_s: float) -> bool:
    """True if ``then`` is at most ``window_s`` seconds before ``now``."""
    return (now - then).total_seconds() <= window_s


def evaluate(
    event: p.Event,
    device: Device | None,
    *,
    now: datetime,
    stale_after_s: float,
    sku_in_flight: Callable[[str], bool],
    last_order: Callable[[], CancelTarget | None],
    future_after_s: float = DEFAULT_FUTURE_S,
) -> Decision:
    """The decision for ``event``. ``sku_in_flight(sku)`` and ``last_order()`` are asked only
    when the rule needs them (the caller answers from its transaction)."""
    if device is None:
        return Decision(p.State.REJECTED, p.NoAction(), REASON_UNKNOWN_DEVICE)
    action = device.mapping.action_for(event.trigger)
    if not device.enabled:
        return Decision(p.State.REJECTED, action, REASON_DISABLED)
    if is_stale(event.ts, now, stale_after_s):
        return Decision(p.State.REJECTED, action, REASON_STALE)
    if is_future(event.ts, now, future_after_s):
        return Decision(p.State.REJECTED, action, REASON_FUTURE)
    if isinstance(action, p.ReorderAction):
        if not device.allow_parallel and sku_in_flight(action.sku):
            return Decision(p.State.THROTTLED, action, REASON_THROTTLED)
        return Decision(p.State.ACCEPTED, action, op="create", test=device.env == "dev")
    if isinstance(action, p.CancelLastAction):
        target = last_order()
        if target is None or not within(target.created_at, now, device.cancel_window_s):
            return Decision(p.State.REJECTED, action, REASON_NOTHING_TO_CANCEL)
        if target.order_id is None:
            return Decision(p.State.REJECTED, action, REASON_CANCEL_TOO_EARLY)
        if not target.cancellable:
            return Decision(p.State.REJECTED, action, REASON_NOTHING_TO_CANCEL)
        return Decision(p.State.ACCEPTED, action, op="cancel", cancel=target)
    # Recorded and answered, so the device stops re-sending it; nothing else happens.
    return Decision(p.State.ACCEPTED, action, REASON_NO_ACTION)


_RANK = {
    p.State.ACCEPTED: 0,
    p.State.QUEUED: 1,
    p.State.ORDERED: 2,
    p.State.PAID: 3,
    p.State.SHIPPED: 4,
    p.State.DELIVERED: 5,
}


def advances(current: p.State, new: p.State) -> bool:
    """May an order move from ``current`` to ``new``? Never backwards, never out of a final
    state (``cancelled``/``failed``/``delivered``); a cancel is allowed until delivered."""
    if current == new or current.is_final:
        return False
    if new in (p.State.CANCELLED, p.State.FAILED):
        return True
    if new not in _RANK or current not in _RANK:
        return False
    return _RANK[new] > _RANK[current]
