"""The operator's views over real HTTP on a real SQLite file: the LED as the device shows it,
"offline since", stored figures, the paged history (page and REST API), the CSV exports and
the telemetry chart."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.web import export
from edgeorder.ingest.web.api import install_api
from tests.web.conftest import WebEnv, serve_web
from tests.web.support import add_device, record_event
from tests.web.support_views import confirm, heartbeats, presence_at


@pytest.fixture
async def webapi(tmp_path: Path) -> AsyncIterator[WebEnv]:
    """The dashboard with the REST API installed as ingest's app has it (the API first)."""
    async with serve_web(tmp_path, before=install_api) as env:
        yield env


def _region(html: str, pattern: str) -> str:
    found = re.search(pattern, html, re.S)
    assert found is not None, pattern
    return found.group(0)


async def test_device_page_shows_led_presence_since_and_figures(webenv: WebEnv) -> None:
    now = p.utcnow()
    add_device(webenv.db_path, "kitchen-01")
    presence_at(webenv.db_path, "kitchen-01", True, now - timedelta(hours=1))
    _, event_id = record_event(webenv.db_path, "kitchen-01", state="accepted")
    confirm(webenv.db_path, event_id, now)  # fast blink for up to 2 minutes
    heartbeats(webenv.db_path, "kitchen-01", [1.0], end=now, dropped=4)
    await webenv.login()
    html = await (await webenv.client.get("/devices/kitchen-01")).text()
    led = _region(html, r'<dd id="led".*?</dd>')
    assert 'data-led="accepted"' in led
    assert "amber fast blink" in led
    assert "(single LED: fast blink)" in led
    assert f'(accepted, <time datetime="{p.format_ts(now)}">' in led
    assert "online since" in _region(html, r'<dd id="presence-since">.*?</dd>')
    assert "(for 1 h)" in html or "(for 59 min)" in html
    assert '<dd id="dropped">4</dd>' in html
    assert "1 h</span>" in html  # uptime 3600 s


async def test_led_goes_off_after_its_time_and_waits_for_an_unanswered_press(
    webenv: WebEnv,
) -> None:
    now = p.utcnow()
    add_device(webenv.db_path, "kitchen-01")
    presence_at(webenv.db_path, "kitchen-01", True, now)
    _, event_id = record_event(webenv.db_path, "kitchen-01", state="ordered", order_id="7")
    confirm(webenv.db_path, event_id, now - timedelta(seconds=12))
    await webenv.login()
    html = await (await webenv.client.get("/devices/kitchen-01")).text()
    led = _region(html, r'<dd id="led".*?</dd>')
    assert 'data-led="off"' in led  # green for 3 s, long over
    assert "(ordered, <time" in led
    record_event(webenv.db_path, "kitchen-01", state="accepted")  # no status confirmed yet
    html = await (await webenv.client.get("/devices/kitchen-01")).text()
    led = _region(html, r'<dd id="led".*?</dd>')
    assert 'data-led="waiting"' in led
    assert "amber blink" in led
    assert "pending" in led


async def test_offline_device_says_since_when_in_list_and_page(webenv: WebEnv) -> None:
    went = p.utcnow() - timedelta(hours=3, minutes=2, seconds=5)
    add_device(webenv.db_path, "porch-02")
    add_device(webenv.db_path, "never-03")
    presence_at(webenv.db_path, "porch-02", False, went)
    await webenv.login()
    fleet = await (await webenv.client.get("/")).text()
    row = _region(fleet, r'<tr id="dev-porch-02".*?</tr>')
    stamp = p.format_ts(went)
    assert f'data-offline-since="{stamp}"' in row
    assert f'Offline since <span class="ts" title="{stamp}">{stamp[:19].replace("T", " ")}' in row
    assert "(for 3 h 2 min)" in row
    assert 'class="led-dot unknown"' in row
    assert "data-offline-since" not in _region(fleet, r'<tr id="dev-never-03".*?</tr>')
    page = await (await webenv.client.get("/devices/porch-02")).text()
    assert "(for 3 h 2 min)" in _region(page, r'<dd id="presence-since">.*?</dd>')
    assert "unknown since the device went offline" in _region(page, r'<dd id="led".*?</dd>')
    never = await (await webenv.client.get("/devices/never-03")).text()
    assert "the device never reported" in _region(never, r'<dd id="led".*?</dd>')


async def test_fleet_row_shows_uptime_dropped_and_led(webenv: WebEnv) -> None:
    now = p.utcnow()
    add_device(webenv.db_path, "kitchen-01")
    presence_at(webenv.db_path, "kitchen-01", True, now)
    heartbeats(webenv.db_path, "kitchen-01", [1.0, 2.0], end=now, dropped=2)
    _, event_id = record_event(webenv.db_path, "kitchen-01", state="accepted")
    confirm(webenv.db_path, event_id, now)
    await webenv.login()
    row = _region(await (await webenv.client.get("/")).text(), r'<tr id="dev-kitchen-01".*?</tr>')
    assert 'data-led="accepted"' in row
    assert 'title="LED: amber fast blink (accepted)"' in row
    assert "up 1 h 1 min" in row
    assert "2 dropped" in row


async def test_timeline_pages_older_and_newer(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    start = p.utcnow() - timedelta(hours=1)
    ids = [
        record_event(webenv.db_path, "kitchen-01", at=p.format_ts(start + timedelta(seconds=n)))
        for n in range(57)
    ]
    await webenv.login()
    html = await (await webenv.client.get("/devices/kitchen-01")).text()
    assert html.count('class="event"') == 50
    older = re.search(r'href="(/devices/kitchen-01\?before=\d+)" rel="next"', html)
    assert older is not None
    assert 'rel="prev"' not in html
    html = await (await webenv.client.get(older.group(1))).text()
    shown = re.findall(r'data-event="([0-9A-Z]{26})"', html)
    assert shown == [event_id for _, event_id in ids[6::-1]]
    assert 'rel="next"' not in html
    newer = re.search(r'href="(/devices/kitchen-01\?after=\d+)" rel="prev"', html)
    assert newer is not None
    html = await (await webenv.client.get(newer.group(1))).text()
    assert html.count('class="event"') == 50
    small = await (await webenv.client.get("/devices/kitchen-01?limit=20&before=abc")).text()
    assert small.count('class="event"') == 20
    assert re.search(r'href="/devices/kitchen-01\?before=\d+&amp;limit=20" rel="next"', small)
    huge = await (await webenv.client.get("/devices/kitchen-01?limit=100000")).text()
    assert huge.count('class="event"') == 57  # bounded at 200, and 57 is all there is


async def test_device_events_api_pages_by_cursor(webapi: WebEnv) -> None:
    add_device(webapi.db_path, "kitchen-01")
    ids = [record_event(webapi.db_path, "kitchen-01")[0] for _ in range(5)]
    await webapi.login()
    resp = await webapi.client.get("/api/devices/kitchen-01/events?limit=2")
    assert resp.status == 200
    page = await resp.json()
    assert [e["id"] for e in page["Data"]] == [ids[4], ids[3]]
    assert (page["older"], page["newer"]) == (ids[3], None)
    assert set(page["Data"][0]) >= {"event_id", "device_id", "state", "received_at"}
    page = await (
        await webapi.client.get(f"/api/devices/kitchen-01/events?limit=2&before={ids[1]}")
    ).json()
    assert [e["id"] for e in page["Data"]] == [ids[0]]
    assert (page["older"], page["newer"]) == (None, ids[0])
    assert (await webapi.client.get("/api/devices/nobody/events")).status == 404
    bad = await webapi.client.get("/api/devices/kitchen-01/events?before=-1")
    assert bad.status == 400
    assert (await bad.json())["Error"] == "invalid"


async def test_events_csv_is_streamed_quoted_and_formula_safe(
    webapi: WebEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "BATCH_ROWS", 3)  # several batches, one cursor step each
    add_device(webapi.db_path, "kitchen-01")
    add_device(webapi.db_path, "other-02")
    for n in range(7):
        record_event(webapi.db_path, "kitchen-01", click=["single", "=cmd|' /C calc'!A0"][n % 2])
    record_event(webapi.db_path, "other-02")
    await webapi.login()
    resp = await webapi.client.get("/api/events.csv?device=kitchen-01")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = resp.headers["Content-Disposition"]
    assert re.fullmatch(
        r'attachment; filename="edgeorder-events-kitchen-01-\d{4}-\d\d-\d\d\.csv"', disposition
    )
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == list(export.EVENT_EXPORT_COLUMNS)
    assert len(rows) == 8
    triggers = [r[4] for r in rows[1:]]
    assert triggers.count("single") == 4
    assert triggers.count("'=cmd|' /C calc'!A0") == 3
    everyone = list(
        csv.reader(io.StringIO(await (await webapi.client.get("/api/events.csv")).text()))
    )
    assert len(everyone) == 9
    future = await webapi.client.get("/api/events.csv?from=2999-01-01")
    assert (await future.text()).count("\r\n") == 1  # the header only
    assert (await webapi.client.get("/api/events.csv?from=yesterday")).status == 400


async def test_orders_csv_and_the_dashboard_links_to_both(webapi: WebEnv) -> None:
    add_device(webapi.db_path, "kitchen-01")
    record_event(webapi.db_path, "kitchen-01", state="ordered", order_id="+42")
    await webapi.login()
    resp = await webapi.client.get("/api/orders.csv?device=kitchen-01&to=2999-12-31T00:00:00Z")
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == list(export.ORDER_EXPORT_COLUMNS)
    assert rows[1][0] == "'+42"
    assert rows[1][3] == "COFFEE-1KG"
    html = await (await webapi.client.get("/devices/kitchen-01")).text()
    assert 'href="/api/events.csv?device=kitchen-01"' in html
    assert 'href="/api/orders.csv?device=kitchen-01"' in html
    fleet = await (await webapi.client.get("/")).text()
    assert 'href="/api/events.csv" download' in fleet
    assert 'href="/api/orders.csv" download' in fleet


async def test_telemetry_chart_draws_readings_in_the_chosen_window(webenv: WebEnv) -> None:
    now = p.utcnow()
    add_device(webenv.db_path, "tank-01")
    heartbeats(webenv.db_path, "tank-01", [40.0, 35.5, 31.25], end=now)
    heartbeats(
        webenv.db_path, "tank-01", [90.0], end=now - timedelta(hours=3)
    )  # outside the 1 h window, inside 6 h
    await webenv.login()
    html = await (await webenv.client.get("/devices/tank-01?window=1h")).text()
    chart = _region(
        html, r'<figure class="chart series-chart" data-series="sensor.level">.*?</figure>'
    )
    assert re.findall(r'data-value="([^"]+)"', chart) == ["40", "35.5", "31.25"]
    assert "<polyline" in chart
    assert "last hour" in chart
    assert 'aria-current="true">1h<' in html
    wide = await (await webenv.client.get("/devices/tank-01?window=6h")).text()
    chart = _region(wide, r'data-series="sensor.level">.*?</figure>')
    assert re.findall(r'data-value="([^"]+)"', chart) == ["90", "40", "35.5", "31.25"]
    assert 'data-series="queue_depth"' in wide
    empty = await (await webenv.client.get("/devices/tank-01?window=1h&q=x")).text()
    assert "sensor.level" in empty
    steady = _region(empty, r'<p class="steady".*?</p>')  # dropped stayed 0: said, not drawn
    assert "<b>dropped</b> 0 throughout the last hour (3 heartbeats)." in steady
    assert 'data-series="dropped"' not in empty
    add_device(webenv.db_path, "quiet-02")
    quiet = await (await webenv.client.get("/devices/quiet-02")).text()
    assert "No heartbeat in the last 24 hours." in quiet


async def test_api_without_its_slash_answers_in_the_api_shape(webapi: WebEnv) -> None:
    await webapi.login()
    resp = await webapi.client.get("/api")
    assert resp.status == 404
    assert (await resp.json())["Error"] == "not_found"
