"""The embedded (amqtt) broker enforces what production Mosquitto does: the ACL on retained
messages too, client ids bound to usernames, authentication before any session is touched, and
no subscription race in its broadcast loop."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from amqtt.session import Session
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder import protocol as p
from edgeorder.demo.broker import EmbeddedBroker, GuardedBroker
from edgeorder.demo.provision import write_acl
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.ingest.support import add_device
from tests.support.mqtt import MqttProbe
from tests.support.net import free_port

pytestmark = pytest.mark.integration

INGEST_CLIENT_ID = "edgeorder-ingest"


class BrokerThread:
    """An EmbeddedBroker on its own event loop thread (the probes block on theirs)."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.broker = EmbeddedBroker("127.0.0.1", self.port, data / "acl", data / "ingest.db")
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, ctx: self.errors.append(ctx))
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=30)

    def start(self) -> BrokerThread:
        self._thread.start()
        self.call(self.broker.start())
        return self

    def stop(self) -> None:
        self.call(self.broker.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def accounts(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b")}
    db = open_db(data / "ingest.db")
    try:
        registry.ensure_service_account(db, "ingest", "svc-secret")
        write_acl(db, data / "acl")
    finally:
        db.conn.close()
    passwords["ingest"] = "svc-secret"
    return passwords


@pytest.fixture
def broker(tmp_path: Path, accounts: dict[str, str]) -> Iterator[BrokerThread]:
    running = BrokerThread(tmp_path / "ingest").start()
    yield running
    running.stop()
    assert not running.errors, running.errors


@pytest.fixture
def connect(broker: BrokerThread, accounts: dict[str, str]) -> Iterator[Any]:
    clients: list[MqttProbe] = []

    def make(user: str, password: str | None = None, **kwargs: Any) -> MqttProbe:
        client = MqttProbe(
            broker.port,
            username=user,
            password=accounts[user] if password is None else password,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def topic(device: str, channel: str) -> str:
    return f"{p.TOPIC_ROOT}/{device}/{channel}"


def test_a_device_sees_nothing_of_another_device_retained_or_not(connect: Any) -> None:
    ingest = connect("ingest", client_id=INGEST_CLIENT_ID, clean_session=False)
    assert ingest.wait_connected()
    ingest.subscribe(f"{p.TOPIC_ROOT}/#")  # every retained topic matches one of its filters
    for device in ("dev-a", "dev-b"):
        ingest.publish(topic(device, "status"), f"status of {device}", retain=True)
        ingest.publish(topic(device, "config"), f"config of {device}", retain=True)
    dev_b = connect("dev-b")
    assert dev_b.wait_connected()
    dev_b.publish(topic("dev-b", "presence"), "dev-b online", retain=True)
    ingest.wait_for(lambda m: m.topic == topic("dev-b", "presence"))

    dev_a = connect("dev-a")
    assert dev_a.wait_connected()
    for forbidden in (f"{p.TOPIC_ROOT}/#", topic("dev-b", "status"), topic("+", "presence")):
        dev_a.subscribe(forbidden)  # refused in the SUBACK; nothing may follow
    dev_a.subscribe(topic("dev-a", "status"))
    dev_a.subscribe(topic("dev-a", "config"))
    dev_a.wait_for(lambda m: m.retain and m.topic.startswith(topic("dev-a", "")), count=2)
    ingest.publish(topic("dev-b", "status"), "live status of dev-b")
    ingest.publish(topic("dev-a", "status"), "live status of dev-a")
    dev_a.wait_for(lambda m: m.payload == b"live status of dev-a")
    # One connection, in order: whatever dev-b's would have been sent, it came before these.
    assert {m.topic for m in dev_a.messages} == {topic("dev-a", "status"), topic("dev-a", "config")}
    assert not [m for m in dev_a.messages if b"dev-b" in m.payload]


def test_a_device_password_cannot_take_ingests_client_id(connect: Any) -> None:
    ingest = connect("ingest", client_id=INGEST_CLIENT_ID, clean_session=False)
    assert ingest.wait_connected()
    ingest.subscribe(topic("+", "events"))
    intruder = connect("dev-a", client_id=INGEST_CLIENT_ID, clean_session=True)
    assert intruder.wait_connected()  # as its own session "dev-a"
    intruder.publish(topic("dev-a", "events"), "marker")
    ingest.wait_for(lambda m: m.payload == b"marker")
    assert ingest.disconnects == []  # never kicked off
    wrong = connect("ingest", "not-the-password", client_id=INGEST_CLIENT_ID)
    assert not wrong.wait_connected()
    intruder.publish(topic("dev-a", "events"), "after the wrong password")
    ingest.wait_for(lambda m: m.payload == b"after the wrong password")
    assert ingest.disconnects == []


def test_ingests_queued_session_survives_a_clean_connect_with_its_client_id(
    connect: Any,
) -> None:
    ingest = connect("ingest", client_id=INGEST_CLIENT_ID, clean_session=False)
    assert ingest.wait_connected()
    ingest.subscribe(topic("+", "events"))
    ingest.close()  # away: the broker queues QoS 1 events for its session
    device = connect("dev-a")
    assert device.wait_connected()
    for n in range(5):
        device.publish(topic("dev-a", "events"), f"queued {n}")
    for user, password in (("dev-b", None), ("ingest", "wrong")):
        wiper = connect(user, password, client_id=INGEST_CLIENT_ID, clean_session=True)
        wiper.wait_connected()
        wiper.close()
    back = connect("ingest", client_id=INGEST_CLIENT_ID, clean_session=False)
    assert back.wait_connected()
    got = back.wait_for(lambda m: m.payload.startswith(b"queued"), count=5)
    assert sorted(m.payload for m in got) == [f"queued {n}".encode() for n in range(5)]


async def test_a_subscribe_during_a_broadcast_loses_nothing(tmp_path: Path) -> None:
    """amqtt 0.12's broadcast loop iterates its subscription dict across the topic check; a
    SUBSCRIBE landing then raised 'dictionary changed size during iteration' (the traceback
    the demo printed at start) and the message never reached the subscribers after it."""
    data = tmp_path / "ingest"
    add_device(data, "dev-0")
    db = open_db(data / "ingest.db")
    for n in range(4):
        registry.ensure_service_account(db, f"svc-{n}", "pw")
    write_acl(db, data / "acl")
    db.conn.close()
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    broker = GuardedBroker(
        EmbeddedBroker("127.0.0.1", free_port(), data / "acl", data / "ingest.db").config(),
        registry_db=data / "ingest.db",
        acl_file=data / "acl",
    )
    await broker.start()
    try:
        status = topic("dev-0", "status")
        filters = [topic("+", "status"), topic("dev-0", "+"), f"{p.TOPIC_ROOT}/#"]
        sessions = [offline_session(f"svc-{n}") for n in range(3)]
        for session, topic_filter in zip(sessions, filters, strict=True):
            assert await broker.add_subscription((topic_filter, 1), session) == 1
        await broker.internal_message_broadcast(status, b"ordered", 1)
        # A new filter, subscribed while that broadcast walks the subscriptions.
        await broker.add_subscription((status, 1), offline_session("svc-3"))
        await broker.internal_message_broadcast(status, b"barrier", 1)
        for session in sessions:
            got = [await asyncio.wait_for(session.retained_messages.get(), 10) for _ in "12"]
            assert [m.data for m in got] == [b"ordered", b"barrier"], session.client_id
    finally:
        await broker.shutdown()
    assert not errors, errors


def offline_session(username: str) -> Session:
    """A persistent session that is not connected: QoS 1 messages queue in it."""
    session = Session()
    session.client_id = session.username = username
    session.clean_session = False
    return session


@pytest.mark.parametrize("client_id", ["", "anything", "dev-b"])
def test_every_client_id_becomes_the_username(connect: Any, client_id: str) -> None:
    ingest = connect("ingest", client_id=INGEST_CLIENT_ID, clean_session=False)
    assert ingest.wait_connected()
    ingest.subscribe(topic("+", "presence"))
    marker = uuid.uuid4().hex
    device = connect("dev-a", client_id=client_id or None)
    assert device.wait_connected()
    device.publish(topic("dev-a", "presence"), marker)
    ingest.wait_for(lambda m: m.payload == marker.encode())


def test_a_will_on_another_devices_topic_is_refused_at_connect(
    broker: BrokerThread, accounts: dict[str, str]
) -> None:
    """amqtt would publish and retain it without asking the ACL: a forged retained status."""
    forger = mqtt_client("dev-a", accounts["dev-a"])
    forger.will_set(topic("dev-b", "status"), '{"state": "ordered"}', qos=1, retain=True)
    assert connack_of(forger, broker.port) == "Not authorized"
    own = mqtt_client("dev-a", accounts["dev-a"])
    own.will_set(topic("dev-a", "presence"), '{"online": false}', qos=1, retain=True)
    assert connack_of(own, broker.port) == "Success"


def mqtt_client(user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
    client.username_pw_set(user, password)
    return client


def connack_of(client: mqtt.Client, port: int) -> str:
    """The reason code of the broker's CONNACK (blocking, one connection)."""
    answered = threading.Event()
    codes: list[str] = []

    def on_connect(*args: Any) -> None:
        codes.append(str(args[3]))
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


@pytest.mark.parametrize("change", ["rotate", "disable", "remove"])
def test_a_revoked_device_is_disconnected_and_cannot_come_back(
    connect: Any, tmp_path: Path, change: str
) -> None:
    """As Mosquitto re-checks its clients at a reload: rotated credentials, a disabled or a
    removed device end the connection that is open, within a second; others stay."""
    dev_a, dev_b = connect("dev-a"), connect("dev-b")
    assert dev_a.wait_connected()
    assert dev_b.wait_connected()
    db = open_db(tmp_path / "ingest" / "ingest.db")
    try:
        if change == "rotate":
            registry.rotate_credentials(db, "dev-a")
        elif change == "disable":
            registry.set_enabled(db, "dev-a", False)
        else:
            registry.remove_device(db, "dev-a")
    finally:
        db.conn.close()
    assert dev_a.disconnected.wait(15), "the revoked session is still open"
    assert dev_b.disconnects == []
    dev_b.publish(topic("dev-b", "presence"), "still here")  # the broker serves the others
    again = connect("dev-a")  # the old password
    assert not again.wait_connected()
