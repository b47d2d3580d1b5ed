"""Pure logic of the operator views: the LED the dashboard derives, durations, telemetry
series, spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from edgeorder.ingest.domain.csv_export import csv_rows, safe_cell
from edgeorder.ingest.domain.device_view import duration_text, led_view
from edgeorder.ingest.domain.telemetry_series import SERIES_MAX, series
from edgeorder.protocol import format_ts
from edgeorder.protocol.led import Pattern

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _ago(seconds: float) -> str:
    return format_ts(NOW - timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("status", "age_s", "pattern", "cause"),
    [
        ("ordered", 1, Pattern.ORDERED, "ordered"),  # green for 3 s...
        ("ordered", 12, Pattern.OFF, "ordered"),  # ...then off
        ("paid", 2, Pattern.ORDERED, "paid"),
        ("accepted", 60, Pattern.ACCEPTED, "accepted"),  # fast blink up to 2 min
        ("queued", 119, Pattern.ACCEPTED, "queued"),
        ("accepted", 121, Pattern.OFF, "accepted"),
        ("throttled", 0.5, Pattern.THROTTLED, "throttled"),
        ("rejected", 1, Pattern.ERROR, "rejected"),
        ("failed", 5, Pattern.OFF, "failed"),
        ("shipped", 1, Pattern.OFF, "shipped"),
    ],
)
def test_led_follows_the_agents_chooser(
    status: str, age_s: float, pattern: Pattern, cause: str
) -> None:
    view = led_view(
        online=True, status=status, confirmed_at=_ago(age_s), awaiting_since=None, now=NOW
    )
    assert (view.pattern, view.cause, view.since) == (pattern, cause, _ago(age_s))


def test_led_waits_offline_idle_and_unknown_states() -> None:
    waiting = led_view(
        online=True, status="ordered", confirmed_at=_ago(1), awaiting_since=_ago(0), now=NOW
    )
    assert (waiting.pattern, waiting.cause, waiting.rgb) == (
        Pattern.WAITING,
        "pending",
        "amber blink",
    )
    offline = led_view(
        online=False, status="ordered", confirmed_at=_ago(1), awaiting_since=None, now=NOW
    )
    assert offline.pattern is None
    assert offline.single == offline.rgb == "unknown"
    idle = led_view(online=True, status=None, confirmed_at=None, awaiting_since=None, now=NOW)
    assert (idle.pattern, idle.cause) == (Pattern.OFF, "idle")
    odd = led_view(
        online=True, status="teleported", confirmed_at=_ago(1), awaiting_since=None, now=NOW
    )
    assert (odd.pattern, odd.cause) == (Pattern.OFF, "idle")
    green = led_view(
        online=True, status="ordered", confirmed_at=_ago(1), awaiting_since=None, now=NOW
    )
    assert (green.single, green.rgb) == ("on", "green solid")


def test_a_press_that_led_to_nothing_and_a_cancel_show_as_the_device_shows_them() -> None:
    from edgeorder.protocol.reasons import NO_ACTION

    nothing = led_view(
        online=True,
        status="accepted",
        confirmed_at=_ago(0.5),
        awaiting_since=None,
        now=NOW,
        reason=NO_ACTION,
    )
    assert (nothing.pattern, nothing.single) == (Pattern.NOTHING, "one long blink")
    cancelled = led_view(
        online=True, status="cancelled", confirmed_at=_ago(1), awaiting_since=None, now=NOW
    )
    assert (cancelled.pattern, cancelled.rgb) == (Pattern.CANCELLED, "magenta two long blinks")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3 * 3600 + 2 * 60 + 5, "3 h 2 min"),
        (86_400, "1 d"),
        (2 * 86_400 + 5 * 3600, "2 d 5 h"),
        (-5, "0 s"),
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_series_puts_readings_first_and_skips_what_is_not_a_number() -> None:
    rows = [
        {
            "received_at": _ago(120),
            "queue_depth": 0,
            "dropped": 0,
            "extra": '{"sensor.level": 41.5, "open_presses": 1, "flag": true, "x": "y"}',
        },
        {"received_at": _ago(60), "queue_depth": 2, "dropped": 1, "extra": "not json"},
        {"received_at": _ago(0), "queue_depth": 1, "dropped": 1, "extra": "[1, 2]"},
    ]
    got = series(rows)
    assert list(got) == ["open_presses", "sensor.level", "queue_depth", "dropped"]
    t0 = (NOW - timedelta(seconds=120)).timestamp()
    assert got["sensor.level"] == [(t0, 41.5)]
    assert [v for _, v in got["queue_depth"]] == [0.0, 2.0, 1.0]
    many = [
        {
            "received_at": _ago(0),
            "queue_depth": 0,
            "dropped": 0,
            "extra": "{" + ", ".join(f'"s{n:02d}": {n}' for n in range(20)) + "}",
        }
    ]
    assert len(series(many)) == SERIES_MAX


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("COFFEE", "COFFEE"),
        (-5, -5),
        (2.5, 2.5),
        (None, ""),
        (True, 1),
    ],
)
def test_cells_a_spreadsheet_would_run_are_quoted(value: object, cell: object) -> None:
    assert safe_cell(value) == cell


def test_csv_quotes_commas_quotes_and_line_breaks() -> None:
    rows: list[dict[str, object]] = [
        {"a": 'say "hi", then\nleave', "b": "=1+1"},
        {"a": None, "b": 7},
    ]
    text = csv_rows(("a", "b"), rows, header=True)
    assert text.endswith("\r\n")
    back = list(csv.reader(io.StringIO(text)))
    assert back == [["a", "b"], ['say "hi", then\nleave', "'=1+1"], ["", "7"]]


def test_series_chart_plots_in_its_window_and_escapes_the_name() -> None:
    from edgeorder.ingest.web.chart import series_chart

    start = NOW.timestamp() - 3600
    svg = series_chart("<b>", [(start + 1800, 5.0), (start + 3600, 5.0)], start, start + 3600, "c")
    assert "&lt;b&gt;" in svg
    assert "<b>" not in svg.replace("<b>&lt;b&gt;</b>", "")
    points = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)
    (x1, y1), (x2, y2) = ((float(x), float(y)) for x, y in points)
    assert y1 == y2 == 10 + (120 - 22 - 10) / 2  # a steady reading sits mid-height
    assert x2 == 720 - 8  # the window's end is the plot's right edge
    assert x1 == (52 + x2) / 2
    assert series_chart("x", [], start, start + 1, "c").count("<circle") == 0
