"""Statuses that never arrive, and statuses that arrive too late: every device converges on
the true state of its presses when Mosquitto (persistence on) is SIGKILLed, with real ingest,
the real order core and agents in this process.

The test broker saves its persistence only when it exits cleanly (``autosave_interval 0``),
so a SIGKILL restarts it from the last clean exit: everything it acknowledged since is lost,
and what it held then (queued statuses, retained ones) comes back. Both are what a production
broker (``autosave_interval 30``) does to the last seconds before a crash.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.agent.runtime import Agent
from edgeorder.protocol.device import DeviceStatus
from tests.agent.support import Recorder, running, signal_factory
from tests.chaos.support import device_config, ingest_truth
from tests.ingest.support import Ingest, OrderCore, add_device, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration

SLOW_ASKS = {"ask_min_s": 600, "ask_max_s": 600}


async def press_one(agent: Agent, rec: Recorder) -> str:
    before = len(rec.events)
    agent.press("single")
    await rec.until(lambda: len(rec.events) == before + 1)
    return rec.events[-1].event_id


async def restart(broker: MosquittoServer, *, kill: bool) -> None:
    """SIGKILL (or SIGTERM: persistence saved) and start again on the same port and files."""
    await asyncio.to_thread(broker.stop, kill=kill)
    await asyncio.to_thread(broker.start)


def settled(agent: Agent) -> Callable[[], bool]:
    """True once every press of ``agent`` is settled (none unacknowledged, none open)."""
    return lambda: agent.queue_depth == 0 and agent.open_presses == 0


def after(rec: Recorder, index: int, pred: Callable[[DeviceStatus], bool]) -> Callable[[], bool]:
    return lambda: any(pred(s) for s in rec.statuses[index:])


async def test_an_ordered_status_the_broker_acknowledged_then_lost_is_asked_for_again(
    tmp_path: Path, mosquitto: MosquittoServer, ordercore: OrderCore, ingest: Ingest
) -> None:
    add_device(ingest.settings.data_dir, "lost-01")
    await ingest.service.devices.reload()
    watcher = MqttProbe(mosquitto.port)
    watcher.subscribe(p.device_topic("lost-01", p.Channel.STATUS))
    await ordercore.stop()  # the press is accepted, then queued: its order comes later
    rec = Recorder()
    agent = Agent(
        device_config(tmp_path, "lost-01", mosquitto.port, outbox=SLOW_ASKS),
        pin_factory=signal_factory(),
        **rec.hooks(),
    )
    async with running(agent):
        event_id = await press_one(agent, rec)
        await rec.until(lambda: agent.press_state(event_id) is p.State.QUEUED)
    # The device is away when its order is made: 'ordered' waits for it in the broker, which
    # acknowledged it to ingest (so ingest will never send it again by itself) ...
    await ordercore.start()
    await wait_for(watcher, lambda m: json.loads(m.payload)["state"] == "ordered")
    await asyncio.wait_for(ingest.service.delivery.settled(), 10)
    watcher.close()
    await restart(mosquitto, kill=True)  # ... and loses it
    await asyncio.wait_for(ingest.service.link.subscribed.wait(), 30)

    again = Recorder()
    back = Agent(
        device_config(tmp_path, "lost-01", mosquitto.port),  # same outbox, quick asks
        pin_factory=signal_factory(),
        **again.hooks(),
    )
    async with running(back):
        assert back.press_state(event_id) is p.State.QUEUED  # nothing came with the reconnect
        await again.until(lambda: back.press_state(event_id) is p.State.ORDERED, 30)
        assert back.open_presses == 0
    assert ingest_truth(ingest.settings.db_path).states["lost-01"] == {event_id: "ordered"}
    assert len(await ordercore.orders("lost-01")) == 1


async def test_a_stale_accepted_from_an_older_broker_snapshot_never_moves_the_press_back(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    ingest = MqttProbe(mosquitto.port)  # plays ingest, to hold statuses back at will
    ingest.subscribe(p.subscription(p.Channel.EVENTS))
    cfg = device_config(tmp_path, "stale-01", mosquitto.port, outbox=SLOW_ASKS)
    topic = p.device_topic("stale-01", p.Channel.STATUS)
    rec = Recorder()
    agent = Agent(cfg, pin_factory=signal_factory(), **rec.hooks())
    async with running(agent):
        event_id = await press_one(agent, rec)
        await asyncio.to_thread(ingest.wait_for, lambda m: m.topic.endswith("/events"))

    ingest.close()

    def send(state: p.State) -> None:
        status = p.Status(event_id=event_id, state=state, ts=p.utcnow())
        sender = MqttProbe(mosquitto.port)
        try:
            assert sender.wait_connected()
            sender.publish(topic, p.encode(status), 1, True)
        finally:
            sender.close()

    await asyncio.to_thread(send, p.State.ACCEPTED)  # queued for the device while it is away
    await restart(mosquitto, kill=False)  # a clean exit: the snapshot holds that 'accepted'

    rec = Recorder()
    agent = Agent(cfg, pin_factory=signal_factory(), **rec.hooks())
    async with running(agent):
        await rec.until(lambda: agent.press_state(event_id) is p.State.ACCEPTED)
        await asyncio.to_thread(send, p.State.ORDERED)
        await rec.led("ordered", "ordered")
        seen = len(rec.statuses)
        await restart(mosquitto, kill=True)  # back to the snapshot: 'accepted' is queued again
        stale = after(rec, seen, lambda s: s.state is p.State.ACCEPTED)
        await rec.until(stale, 30)
        assert agent.press_state(event_id) is p.State.ORDERED
        shown = [pattern for pattern, _ in rec.leds]
        assert "accepted" not in shown[shown.index("ordered") :]


@asynccontextmanager
async def fleet(
    tmp_path: Path, ids: list[str], port: int
) -> AsyncIterator[list[tuple[Agent, Recorder]]]:
    agents = []
    for device_id in ids:
        rec = Recorder()
        config = device_config(tmp_path, device_id, port)
        agents.append((Agent(config, pin_factory=signal_factory(), **rec.hooks()), rec))
    async with running(agents[0][0]), running(agents[1][0]), running(agents[2][0]):
        yield agents


async def test_every_device_converges_when_the_broker_is_sigkilled_while_statuses_flow(
    tmp_path: Path, mosquitto: MosquittoServer, ordercore: OrderCore, ingest: Ingest
) -> None:
    ids = ["flow-0", "flow-1", "flow-2"]
    for device_id in ids[:2]:
        add_device(ingest.settings.data_dir, device_id, allow_parallel=True)
    add_device(ingest.settings.data_dir, ids[2])  # throttled while its order is in flight
    await ingest.service.devices.reload()
    rounds, per_round = 4, 15
    async with fleet(tmp_path, ids, mosquitto.port) as agents:
        for _ in range(rounds):
            marks = [len(rec.statuses) for _, rec in agents]
            for n in range(per_round):
                agent, _ = agents[n % len(agents)]
                agent.press("single")
            # mid-stream: the first answers of this round are in, most are still to come
            _, first_rec = agents[0]
            await first_rec.until(after(first_rec, marks[0], lambda s: True))
            await restart(mosquitto, kill=True)
        for agent, rec in agents:
            await rec.until(settled(agent), 60)
        made = {agent.device_id: [e.event_id for e in rec.events] for agent, rec in agents}
        truth = ingest_truth(ingest.settings.db_path)
        for agent, _ in agents:
            device_id = agent.device_id
            seen = {e: getattr(agent.press_state(e), "value", None) for e in made[device_id]}
            assert seen == truth.states[device_id], device_id  # none lost, none stuck
    assert sum(len(m) for m in made.values()) == rounds * per_round
    assert truth.pending_outbox == 0
    assert max(truth.orders_per_event.values()) == 1
    for device_id in ids:
        orders = await ordercore.orders(device_id)
        assert sorted(str(o["Id"]) for o in orders) == sorted(truth.order_ids.get(device_id, []))
    assert set(truth.states[ids[0]].values()) == {"ordered"}
    assert "throttled" in truth.states[ids[2]].values()
