"""Well-known ``Status.reason`` texts that a device may act on.

``reason`` stays free text for people (the dashboard shows it); these few are part of the
contract because the agent's LED tells them apart from errors: a click with no action mapped
and a long press with nothing to cancel are "nothing to do", not a failure and not an order
in progress (protocol/README.md, Well-known reasons).
"""

from __future__ import annotations

from edgeorder.protocol.values import State

__all__ = ["NOTHING_TO_CANCEL", "NO_ACTION", "is_nothing_to_do"]

NO_ACTION = "no action mapped"
"""With ``accepted``: ingest recorded the press and will do nothing more with it."""

NOTHING_TO_CANCEL = "no order to cancel within the cancel window"
"""With ``rejected``: a long press (``cancel_last``) found no order it may still cancel."""


def is_nothing_to_do(state: State, reason: str | None) -> bool:
    """True when a status means the press led to nothing, as intended: an ``accepted`` that
    carries a reason (ingest's final word on a press it will not act on; older backends say
    so the same way) or a ``rejected`` cancel with no order to cancel."""
    if state is State.ACCEPTED:
        return reason is not None
    return state is State.REJECTED and reason == NOTHING_TO_CANCEL
