"""The transition table, without HTTP."""

from __future__ import annotations

import pytest

from edgeorder.ordercore.lifecycle import Action, IllegalTransitionError, OrderStatus, apply_action

S = OrderStatus


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        (Action.AUTHORIZE, S.CREATED, S.AUTHORIZED),
        (Action.CAPTURE, S.CREATED, S.CAPTURED),
        (Action.CAPTURE, S.AUTHORIZED, S.CAPTURED),
        (Action.DENY, S.AUTHORIZED, S.DENIED),
        (Action.SHIP, S.CAPTURED, S.SHIPPED),
        (Action.SHIP, S.CREATED, S.SHIPPED),
        (Action.COMPLETE, S.SHIPPED, S.COMPLETED),
        (Action.CANCEL, S.CAPTURED, S.CANCELLED_BY_MERCHANT),
    ],
)
def test_legal_transitions(action: Action, start: OrderStatus, end: OrderStatus) -> None:
    t = apply_action(action, start, closed=False)
    assert (t.old_status, t.new_status, t.closed) == (start, end, False)


@pytest.mark.parametrize(
    ("action", "start"),
    [
        (Action.CAPTURE, S.CAPTURED),
        (Action.SHIP, S.CANCELLED_BY_MERCHANT),
        (Action.SHIP, S.DENIED),
        (Action.COMPLETE, S.CAPTURED),
        (Action.CANCEL, S.SHIPPED),
        (Action.CANCEL, S.CANCELLED_BY_USER),
        (Action.AUTHORIZE, S.AUTHORIZED),
        (Action.DENY, S.CAPTURED),
        (Action.CLOSE, S.CANCELLED_BY_MERCHANT),
    ],
)
def test_illegal_transitions(action: Action, start: OrderStatus) -> None:
    with pytest.raises(IllegalTransitionError) as info:
        apply_action(action, start, closed=False)
    assert info.value.status is start


def test_cancel_by_user_is_22() -> None:
    assert apply_action(Action.CANCEL, S.CREATED, False, cancelled_by="user").new_status == 22


def test_close_and_reopen_keep_the_status_and_closed_blocks_everything_else() -> None:
    closed = apply_action(Action.CLOSE, S.SHIPPED, closed=False)
    assert (closed.new_status, closed.closed) == (S.SHIPPED, True)
    for action in Action:
        if action is not Action.REOPEN:
            with pytest.raises(IllegalTransitionError):
                apply_action(action, S.SHIPPED, closed=True)
    reopened = apply_action(Action.REOPEN, S.SHIPPED, closed=True)
    assert (reopened.new_status, reopened.closed) == (S.SHIPPED, False)
    with pytest.raises(IllegalTransitionError):
        apply_action(Action.REOPEN, S.SHIPPED, closed=False)


def test_labels() -> None:
    assert S.CREATED.label == "Created"
    assert S.CANCELLED_BY_USER.label == "Cancelled by user"
