"""Inbound routing as a pure function: own status/config topics only, payloads validated."""

from __future__ import annotations

import pytest

from edgeorder import protocol as p
from edgeorder.agent.classifier import ClickTimings
from edgeorder.agent.inbound import parse_inbound, timings_for
from edgeorder.protocol.device import DesiredConfig, DeviceStatus

EVENT_ID = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"


def test_a_status_and_a_config_on_the_own_topics() -> None:
    status = p.Status(event_id=EVENT_ID, state=p.State.ORDERED, order_id="7", ts=p.utcnow())
    got = parse_inbound(p.device_topic("d1", p.Channel.STATUS), p.encode(status), "d1")
    assert isinstance(got, DeviceStatus)
    assert (got.event_id, got.state, got.order_id) == (EVENT_ID, p.State.ORDERED, "7")
    config = p.DeviceConfig(version=3, long_press_ms=900)
    got_config = parse_inbound(p.device_topic("d1", p.Channel.CONFIG), p.encode(config), "d1")
    assert got_config == DesiredConfig(version=3, long_press_ms=900)


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("edgeorder/v1/devices/d2/status", b"{}"),  # another device
        ("edgeorder/v1/devices/d1/events", b"{}"),  # not a channel the device reads
        ("elsewhere/d1/status", b"{}"),
        ("edgeorder/v1/devices/d1/status", b"\xff"),
        ("edgeorder/v1/devices/d1/status", b'{"v":1,"state":"ordered"}'),
        ("edgeorder/v1/devices/d1/config", b"[]"),
    ],
)
def test_anything_else_is_a_protocol_error(topic: str, payload: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        parse_inbound(topic, payload, "d1")


def test_a_config_changes_only_the_windows_it_names() -> None:
    current = ClickTimings(0.02, 0.4, 1.5)
    assert timings_for(current, DesiredConfig(version=1)) == current
    changed = timings_for(current, DesiredConfig(version=2, long_press_ms=800))
    assert changed == ClickTimings(0.02, 0.4, 0.8)
