from __future__ import annotations

import pytest

from edgeorder import protocol as p


def test_build_and_parse_are_inverse() -> None:
    for channel in p.Channel:
        topic = p.device_topic("kitchen-01", channel)
        assert p.parse_device_topic(topic) == ("kitchen-01", channel)
    assert p.device_topic("a", "config/reported") == "edgeorder/v1/devices/a/config/reported"


@pytest.mark.parametrize(
    "topic",
    [
        "edgeorder/v2/devices/a/events",
        "edgeorder/v1/devices/a/unknown",
        "edgeorder/v1/devices/bad id/events",
        "edgeorder/v1/devices/" + "x" * 65 + "/events",
        "edgeorder/v1/devices//events",
    ],
)
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(p.TopicError):
        p.parse_device_topic(topic)


def test_device_id_rules() -> None:
    assert p.is_valid_device_id("A_b-9")
    assert not p.is_valid_device_id("")
    assert not p.is_valid_device_id("a/b")
    with pytest.raises(p.TopicError):
        p.device_topic("a+b", p.Channel.EVENTS)


def test_subscriptions() -> None:
    assert p.subscription(p.Channel.EVENTS) == "edgeorder/v1/devices/+/events"
    assert (
        p.subscription("status", shared_group="ingest")
        == "$share/ingest/edgeorder/v1/devices/+/status"
    )
