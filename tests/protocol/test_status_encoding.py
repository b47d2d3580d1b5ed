"""``encode`` writes a Status by hand (ingest's hot path): byte for byte what pydantic writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from edgeorder import protocol as p

ulids = st.from_regex(r"\A[0-7][0-9A-HJKMNP-TV-Z]{25}\Z")
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
stamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(
    event_id=st.none() | ulids,
    state=st.sampled_from(p.State),
    order_id=st.none() | texts,
    reason=st.none() | texts,
    ts=stamps,
)
def test_a_status_encodes_as_pydantic_writes_it(
    event_id: str | None, state: p.State, order_id: str | None, reason: str | None, ts: datetime
) -> None:
    status = p.Status(event_id=event_id, state=state, order_id=order_id, reason=reason, ts=ts)
    encoded = p.encode(status)
    assert encoded == status.model_dump_json().encode()
    back = p.decode(p.Status, encoded)  # the same, but for ts: milliseconds on the wire
    assert back.model_copy(update={"ts": status.ts}) == status


def test_quotes_controls_and_other_zones_survive_the_round_trip() -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=-3)))
    status = p.Status(event_id=None, state=p.State.REJECTED, reason='a"b\\c\n\x00\u2028é😀', ts=ts)
    assert p.encode(status) == status.model_dump_json().encode()
    assert b'"ts":"2026-01-02T06:04:05.678Z"' in p.encode(status)
