"""Pure: compare what the fleet sent with what the order core holds. Lost and duplicates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Reconciliation", "reconcile"]


@dataclass(frozen=True)
class Reconciliation:
    """The exactly-once check of one run against the order core.

    ``lost``: events with no order in the order core that is theirs alone (no ``ordered``
    status, an order id the core doesn't know, an order of another device, or an order id
    claimed by several events). ``duplicates``: orders beyond one per event, counted per
    device (the core's own count, independent of statuses). ``unclaimed_orders``: orders
    in the core that no ``ordered`` status named.
    """

    events: int
    orders_in_core: int
    ordered_status: int
    lost: int
    duplicates: int
    unclaimed_orders: int
    no_status: int
    unknown_order_id: int
    wrong_device: int
    shared_order_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(
    events: Mapping[str, str],
    ordered: Mapping[str, str],
    core_orders: Mapping[str, str | None],
) -> Reconciliation:
    """``events``: event_id -> device_id sent; ``ordered``: event_id -> order id from its
    ``ordered`` status; ``core_orders``: order id -> Device.Id for every order in the core."""
    claims = Counter(ordered[e] for e in events if e in ordered)
    no_status = unknown = wrong_device = 0
    for event_id, device_id in events.items():
        order_id = ordered.get(event_id)
        if order_id is None:
            no_status += 1
        elif order_id not in core_orders:
            unknown += 1
        elif core_orders[order_id] != device_id:
            wrong_device += 1
    shared = sum(n - 1 for n in claims.values() if n > 1)
    per_device_sent = Counter(events.values())
    per_device_core = Counter(d for d in core_orders.values())
    duplicates = sum(
        max(0, n - per_device_sent.get(d, 0)) for d, n in per_device_core.items() if d is not None
    )
    return Reconciliation(
        events=len(events),
        orders_in_core=len(core_orders),
        ordered_status=sum(1 for e in events if e in ordered),
        lost=no_status + unknown + wrong_device + shared,
        duplicates=duplicates,
        unclaimed_orders=sum(1 for o in core_orders if o not in claims),
        no_status=no_status,
        unknown_order_id=unknown,
        wrong_device=wrong_device,
        shared_order_id=shared,
    )
