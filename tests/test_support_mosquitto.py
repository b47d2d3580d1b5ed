"""The broker fixture itself: the project's config starts, and a QoS1 burst larger than
Mosquitto's default queue (1000) reaches a subscriber that was offline, in full."""

from __future__ import annotations

import pytest

from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


def test_offline_persistent_subscriber_gets_a_burst_beyond_default_queue(
    mosquitto: MosquittoServer,
) -> None:
    # A persistent session subscribes (SUBACK awaited), then goes away.
    sub = MqttProbe(mosquitto.port, client_id="burst-sub", clean_session=False)
    sub.subscribe("burst/#")
    sub.close()
    probe = MqttProbe(mosquitto.port)
    probe.subscribe("burst/#")

    for i in range(1500):
        probe.client.publish(f"burst/{i}", b"x", qos=1)
    probe.wait_for(lambda m: m.topic.startswith("burst/"), count=1500)

    back = MqttProbe(mosquitto.port, client_id="burst-sub", clean_session=False)
    got = back.wait_for(lambda m: m.topic.startswith("burst/"), count=1500, timeout=30)
    assert len({m.topic for m in got}) == 1500
    back.close()
    probe.close()
