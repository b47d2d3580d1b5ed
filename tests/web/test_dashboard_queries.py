"""The dashboard's SQL on both backends (a real SQLite file, a real PostgreSQL database), filled
through the registry and ledger tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store import dashboard as queries
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.web.chart import hourly_chart
from edgeorder.ingest.web.forms import FormError, parse_mapping
from tests.web.support import (
    add_device,
    record_event,
    record_rejection,
    set_presence,
)


@pytest.fixture
def db_path(database: Database) -> Database:
    database.migrate()
    return database


@pytest.fixture
def ro(db_path: Database) -> Iterator[Conn]:
    conn = db_path.connect(readonly=True)
    yield conn
    conn.close()


def test_fleet_rows_join_presence_events_orders_and_failures(db_path: Database, ro: Conn) -> None:
    add_device(db_path, "kitchen-01")
    add_device(db_path, "garage-02", env="dev")
    set_presence(db_path, "kitchen-01", True, fw="1.2.3")
    record_event(db_path, "kitchen-01", state="ordered", order_id="7")
    record_event(db_path, "garage-02", state="rejected")
    record_rejection(db_path, "garage-02")
    rows = {r["device_id"]: r for r in queries.fleet_rows(ro)}
    kitchen, garage = rows["kitchen-01"], rows["garage-02"]
    assert kitchen["online"] == 1
    assert kitchen["fw"] == "1.2.3"
    assert kitchen["last_order_id"] == "7"
    assert kitchen["last_order_state"] == "ordered"
    assert kitchen["last_event_state"] == "ordered"
    assert kitchen["failures"] == 0
    assert garage["online"] == 0
    assert garage["last_order_id"] is None
    assert garage["failures"] == 2
    assert garage["env"] == "dev"
    assert kitchen["last_seen"] is not None


def test_filters(db_path: Database, ro: Conn) -> None:
    add_device(db_path, "kitchen-01")
    add_device(db_path, "garage-02", env="dev")
    set_presence(db_path, "kitchen-01", True)
    record_event(db_path, "garage-02", state="failed")

    def ids(flt: queries.FleetFilter) -> list[str]:
        return [r["device_id"] for r in queries.fleet_rows(ro, flt)]

    assert ids(queries.FleetFilter()) == ["garage-02", "kitchen-01"]
    assert ids(queries.FleetFilter(q="KITCH")) == ["kitchen-01"]
    assert ids(queries.FleetFilter(q="garage-02 name")) == ["garage-02"]
    assert ids(queries.FleetFilter(online=True)) == ["kitchen-01"]
    assert ids(queries.FleetFilter(online=False)) == ["garage-02"]
    assert ids(queries.FleetFilter(env="prod")) == ["kitchen-01"]
    assert ids(queries.FleetFilter(failures=True)) == ["garage-02"]


def test_totals_count_today_only(db_path: Database, ro: Conn) -> None:
    add_device(db_path, "kitchen-01")
    set_presence(db_path, "kitchen-01", True)
    yesterday = p.format_ts(p.utcnow() - timedelta(days=1, hours=1))
    record_event(db_path, "kitchen-01", state="ordered", order_id="1", at=yesterday)
    record_event(db_path, "kitchen-01", state="ordered", order_id="2")
    record_event(db_path, "kitchen-01", state="queued", pending=True)
    record_rejection(db_path, "kitchen-01")
    totals = queries.fleet_totals(ro)
    assert totals == queries.Totals(online=1, total=1, orders_today=1, rejected_today=1, buffered=1)


def test_timeline_has_statuses_and_order(db_path: Database, ro: Conn) -> None:
    add_device(db_path, "kitchen-01")
    _, first = record_event(
        db_path, "kitchen-01", state="ordered", order_id="9", order_state="shipped"
    )
    _, second = record_event(db_path, "kitchen-01", state="throttled")
    events = queries.timeline(ro, "kitchen-01")
    assert [e["event_id"] for e in events] == [second, first]
    assert [s["state"] for s in events[1]["statuses"]] == ["accepted", "ordered"]
    assert events[1]["order_state"] == "shipped"
    assert queries.timeline(ro, "nobody") == []
    assert queries.device_detail(ro, "nobody") is None


def test_buffer_rows_only_pending(db_path: Database, ro: Conn) -> None:
    add_device(db_path, "kitchen-01")
    record_event(db_path, "kitchen-01", state="queued", pending=True, last_error="503 down")
    record_event(db_path, "kitchen-01", state="ordered", order_id="3")
    rows = queries.buffer_rows(ro)
    assert len(rows) == 1
    assert rows[0]["last_error"] == "503 down"
    assert rows[0]["attempts"] == 3


def test_hourly_counts_cover_24_hours(db_path: Database, ro: Conn) -> None:
    add_device(db_path, "kitchen-01")
    now = p.utcnow()
    two_hours_ago = p.format_ts(now - timedelta(hours=2))
    record_event(db_path, "kitchen-01", state="ordered", order_id="1", at=two_hours_ago)
    record_event(db_path, "kitchen-01", state="ordered", order_id="2")
    record_event(
        db_path,
        "kitchen-01",
        state="ordered",
        order_id="3",
        at=p.format_ts(now - timedelta(hours=30)),
    )
    record_rejection(db_path, "kitchen-01")
    counts = queries.hourly_counts(ro, now=now)
    assert len(counts) == 24
    assert counts[-1][1:] == (1, 1)
    assert counts[-3] == (two_hours_ago[:13], 1, 0)
    assert sum(c[1] for c in counts) == 2  # the 30-hour-old order is outside the window


def test_chart_draws_one_bar_pair_per_hour() -> None:
    counts = [(f"2026-11-23T{h:02d}", h % 3, 1 if h == 5 else 0) for h in range(24)]
    svg = hourly_chart(counts)
    assert svg.count('class="orders"') == 24
    assert svg.count('class="rejections"') == 24
    tallest = re.search(r'height="([\d.]+)" class="orders" data-hour="2026-11-23T02"', svg)
    empty = re.search(r'height="([\d.]+)" class="orders" data-hour="2026-11-23T00"', svg)
    assert tallest
    assert float(tallest.group(1)) > 100
    assert empty
    assert float(empty.group(1)) == 0
    assert "orders (24)" in svg
    assert "rejections (1)" in svg


def test_parse_mapping_from_form() -> None:
    mapping = parse_mapping(
        {
            "single_type": "reorder",
            "single_sku": "TEA",
            "single_quantity": "2",
            "double_type": "none",
            "long_type": "cancel_last",
        },
        sensors={"level": {"type": "reorder", "sku": "SALT"}},
    )
    assert mapping.single == p.ReorderAction(sku="TEA", quantity=2)
    assert mapping.long == p.CancelLastAction()
    assert mapping.sensors["level"] == p.ReorderAction(sku="SALT")
    with pytest.raises(FormError, match="single: a reorder needs a SKU"):
        parse_mapping({"single_type": "reorder", "single_sku": " "})
    with pytest.raises(FormError, match="quantity"):
        parse_mapping({"single_type": "reorder", "single_sku": "A", "single_quantity": "0"})
    with pytest.raises(FormError, match="unknown action"):
        parse_mapping({"double_type": "explode"})
