"""``format_ts``: the one timestamp format of the wire contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from edgeorder.protocol import State, Status, encode, format_ts


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (datetime(2026, 11, 22, 13, 0, 0, 123456, tzinfo=UTC), "2026-11-22T13:00:00.123Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        # another offset is converted to UTC, across a day boundary
        (
            datetime(2026, 1, 1, 1, 30, 0, 4000, tzinfo=timezone(timedelta(hours=3))),
            "2025-12-31T22:30:00.004Z",
        ),
    ],
)
def test_format_ts_is_utc_with_milliseconds_and_z(ts: datetime, text: str) -> None:
    assert format_ts(ts) == text


def test_a_status_carries_the_same_format() -> None:
    ts = datetime(2026, 11, 22, 13, 0, 0, 180000, tzinfo=UTC)
    raw = encode(Status(event_id=None, state=State.REJECTED, ts=ts))
    assert b'"ts":"2026-11-22T13:00:00.180Z"' in raw
