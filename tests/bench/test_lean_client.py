"""The bench's own MQTT 3.1.1 client: its packets byte for byte, and through a real Mosquitto
with paho on the other side (what the generator publishes is what a device would)."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from edgeorder.bench import wire
from edgeorder.bench.counter import connect_client
from edgeorder.bench.events import device_ids, plan_events
from edgeorder.bench.load import BenchLoop, LoadGenerator, StatusWatcher, status_fields
from edgeorder.protocol import Channel, State, Status, device_topic, encode, subscription, utcnow
from tests.support.mosquitto import MosquittoServer


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
     (16_384, b"\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")],
)  # fmt: skip
def test_remaining_length_is_the_specs_variable_byte_integer(n: int, encoded: bytes) -> None:
    assert wire.remaining_length(n) == encoded
    with pytest.raises(ValueError, match="out of range"):
        wire.remaining_length(268_435_456)


def test_a_qos1_publish_is_header_topic_packet_id_payload() -> None:
    packet = wire.publish(b"a/b", b"hi", 0x0102)
    assert packet == b"\x32\x09\x00\x03a/b\x01\x02hi"
    assert wire.publish(b"t", b"", 1, retain=True)[0] == 0x33


def test_the_reader_counts_pubacks_and_keeps_split_packets_for_later() -> None:
    reader = wire.PacketReader()
    stream = wire.puback(1) + wire.puback(2) + b"\x20\x02\x00\x00" + wire.publish(b"t", b"xy", 7)
    acks, packets = reader.feed(stream[:5])  # two PUBACKs and one byte of a CONNACK
    assert (acks, packets) == (1, [])  # the second PUBACK is split after its first byte
    acks, packets = reader.feed(stream[5:12])
    assert acks == 1
    assert [p.kind for p in packets] == [wire.CONNACK]
    acks, packets = reader.feed(stream[12:])
    assert acks == 0
    [publish] = packets
    assert wire.parse_publish(publish) == ("t", b"xy", 7, False)


def test_the_reader_refuses_a_remaining_length_of_five_bytes() -> None:
    with pytest.raises(wire.ProtocolError, match="longer than 4 bytes"):
        wire.PacketReader().feed(b"\x30\xff\xff\xff\xff\x01")


def test_status_fields_take_what_the_bench_measures_and_refuse_the_rest() -> None:
    status = Status(event_id=None, state=State.ORDERED, order_id="42", ts=utcnow())
    assert status_fields(encode(status)) == (None, "ordered", "42", None)
    for bad in (b"{", b"[]", b'{"state":"lost"}', b'{"state":"ordered","event_id":7}'):
        assert status_fields(bad) is None


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_the_generator_publishes_every_event_at_qos1_to_a_paho_subscriber(
    mosquitto: MosquittoServer,
) -> None:
    got: list[tuple[str, bytes, int]] = []
    everything = threading.Event()
    events = plan_events(device_ids(3), 250, [1, 1, 1])

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        got.append((msg.topic, bytes(msg.payload), msg.qos))
        if len(got) == len(events):
            everything.set()

    subscribed = threading.Event()
    paho = connect_client("127.0.0.1", mosquitto.port, "test-counter")
    paho.on_message = on_message
    paho.on_subscribe = lambda *a: subscribed.set()
    paho.subscribe(subscription(Channel.EVENTS), qos=1)
    assert subscribed.wait(10)
    generator = LoadGenerator("127.0.0.1", mosquitto.port, connections=2, window=16)
    published: list[str] = []
    try:
        run = generator.publish(events, on_published=lambda e, t: published.append(e))
    finally:
        generator.close()
    assert everything.wait(20)
    paho.disconnect()
    paho.loop_stop()
    assert run.count == 250
    assert run.last_ack >= run.last_publish >= run.first_publish
    assert published == [e.event_id for e in events]
    assert sorted(got) == sorted((e.topic, e.payload, 1) for e in events)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_the_watcher_receives_qos1_statuses_and_counts_bad_ones(
    mosquitto: MosquittoServer,
) -> None:
    seen: list[tuple[str | None, str, str | None, str | None]] = []
    done = threading.Event()

    def handler(
        event_id: str | None, state: str, order: str | None, why: str | None, at: float
    ) -> None:
        seen.append((event_id, state, order, why))
        if len(seen) == 20:
            done.set()

    loop = BenchLoop()
    watcher = StatusWatcher("127.0.0.1", mosquitto.port, handler, loop)
    paho = connect_client("127.0.0.1", mosquitto.port, "test-ingest")
    try:
        topic = device_topic("dev-a", Channel.STATUS)
        paho.publish(topic, b"not json", qos=1).wait_for_publish(10)
        for i in range(20):
            status = Status(event_id=None, state=State.ACCEPTED, order_id=str(i), ts=utcnow())
            paho.publish(topic, encode(status), qos=1).wait_for_publish(10)
        assert done.wait(20)
    finally:
        paho.disconnect()
        paho.loop_stop()
        watcher.close()
        loop.stop()
    assert watcher.bad == 1
    assert [s[2] for s in seen] == [str(i) for i in range(20)]
