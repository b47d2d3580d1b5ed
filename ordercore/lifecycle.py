"""The order lifecycle: status codes, labels, actions and the transition table. Pure.

Status codes are the BlackBox dialect's (0 created ... 22 cancelled by user). On top of them sits
the Nuvemshop notion of an *open* or *closed* (archived) order: ``close`` archives an order
without changing its status code, ``reopen`` brings a closed order back. While an order is
closed, every action but ``reopen`` is illegal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "ACTIONS",
    "CANCELLED",
    "EVENTS",
    "EVENT_NAMES",
    "Action",
    "IllegalTransitionError",
    "OrderStatus",
    "Transition",
    "apply_action",
    "check_changeable",
    "order_state",
    "status_json",
]


class OrderStatus(IntEnum):
    """Status codes of an order (and of its items), as in the BlackBox seed."""

    CREATED = 0
    AUTHORIZED = 1
    CAPTURED = 2
    SHIPPED = 5
    COMPLETED = 10
    DENIED = 20
    CANCELLED_BY_MERCHANT = 21
    CANCELLED_BY_USER = 22

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: dict[OrderStatus, str] = {
    OrderStatus.CREATED: "Created",
    OrderStatus.AUTHORIZED: "Payment authorized",
    OrderStatus.CAPTURED: "Payment captured",
    OrderStatus.SHIPPED: "Shipped",
    OrderStatus.COMPLETED: "Completed",
    OrderStatus.DENIED: "Payment denied",
    OrderStatus.CANCELLED_BY_MERCHANT: "Cancelled by merchant",
    OrderStatus.CANCELLED_BY_USER: "Cancelled by user",
}


class Action(StrEnum):
    """What may be done to an order: ``POST /api/order/{id}/{action}``."""

    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    DENY = "deny"
    SHIP = "ship"
    COMPLETE = "complete"
    CANCEL = "cancel"
    CLOSE = "close"
    REOPEN = "reopen"


ACTIONS: tuple[Action, ...] = tuple(Action)

CANCELLED = frozenset({21, 22})

# Webhook event emitted by each action (order/created is emitted by checkout).
EVENTS: dict[Action, str] = {
    Action.AUTHORIZE: "order/authorized",
    Action.CAPTURE: "order/paid",
    Action.DENY: "order/denied",
    Action.SHIP: "order/shipped",
    Action.COMPLETE: "order/completed",
    Action.CANCEL: "order/cancelled",
    Action.CLOSE: "order/closed",
    Action.REOPEN: "order/reopened",
}
EVENT_NAMES: tuple[str, ...] = ("order/created", *EVENTS.values(), "order/edited", "order/updated")
"""Every webhook event: ``order/created`` by checkout, one per action, ``order/edited`` when
an edit changes the lines (Nuvemshop's order/edited), ``order/updated`` when PUT changes the
owner note or the buyer's data."""

S = OrderStatus
# action -> {from status: to status}. Cancel's target depends on who cancels (see apply_action).
# Shipping is allowed before capture: cash on delivery and the demo ship unpaid orders.
_TABLE: dict[Action, dict[OrderStatus, OrderStatus]] = {
    Action.AUTHORIZE: {S.CREATED: S.AUTHORIZED},
    Action.CAPTURE: {S.CREATED: S.CAPTURED, S.AUTHORIZED: S.CAPTURED},
    Action.DENY: {S.CREATED: S.DENIED, S.AUTHORIZED: S.DENIED},
    Action.SHIP: {S.CREATED: S.SHIPPED, S.AUTHORIZED: S.SHIPPED, S.CAPTURED: S.SHIPPED},
    Action.COMPLETE: {S.SHIPPED: S.COMPLETED},
    Action.CANCEL: {
        S.CREATED: S.CANCELLED_BY_MERCHANT,
        S.AUTHORIZED: S.CANCELLED_BY_MERCHANT,
        S.CAPTURED: S.CANCELLED_BY_MERCHANT,
    },
}
_CANCELLED = frozenset({S.CANCELLED_BY_MERCHANT, S.CANCELLED_BY_USER})


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of a legal action: the new status and the new closed flag."""

    action: Action
    old_status: OrderStatus
    new_status: OrderStatus
    was_closed: bool
    closed: bool


class IllegalTransitionError(Exception):
    """``action`` is not allowed for an order in ``status`` (and ``closed`` state)."""

    def __init__(self, action: str, status: OrderStatus, closed: bool) -> None:
        state = f"{status.value} ({status.label}{', closed' if closed else ''})"
        super().__init__(f"cannot {action} an order in status {state}")
        self.action = action
        self.status = status
        self.closed = closed


def apply_action(
    action: Action, status: OrderStatus, closed: bool, *, cancelled_by: str = "merchant"
) -> Transition:
    """The transition ``action`` makes from (``status``, ``closed``), or IllegalTransitionError."""
    if action is Action.REOPEN:
        if not closed:
            raise IllegalTransitionError(action, status, closed)
        return Transition(action, status, status, True, False)
    if closed:
        raise IllegalTransitionError(action, status, closed)
    if action is Action.CLOSE:
        if status in _CANCELLED:
            raise IllegalTransitionError(action, status, closed)
        return Transition(action, status, status, False, True)
    target = _TABLE[action].get(status)
    if target is None:
        raise IllegalTransitionError(action, status, closed)
    if action is Action.CANCEL and cancelled_by == "user":
        target = S.CANCELLED_BY_USER
    return Transition(action, status, target, False, False)


_CHANGEABLE = {
    "edit the lines of": frozenset({S.CREATED, S.AUTHORIZED}),
    "change the buyer data of": frozenset({S.CREATED, S.AUTHORIZED, S.CAPTURED}),
}


def check_changeable(what: str, status: OrderStatus, closed: bool) -> None:
    """Lines may change before payment, buyer data before shipping; never while closed."""
    if closed or status not in _CHANGEABLE[what]:
        raise IllegalTransitionError(what, status, closed)


def order_state(status: int, closed: bool) -> str:
    """Nuvemshop's order status: ``cancelled``, ``closed`` (archived) or ``open``."""
    if status in CANCELLED:
        return "cancelled"
    return "closed" if closed else "open"


def status_json(code: int) -> dict[str, object]:
    """``{"Code": 5, "Label": "Shipped"}`` for a status code."""
    status = OrderStatus(code)
    return {"Code": status.value, "Label": status.label}
