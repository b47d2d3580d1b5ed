"""The hand-off between other threads and the agent's worker."""

from __future__ import annotations

import asyncio

import pytest

from edgeorder.agent.errors import AgentNotRunningError
from edgeorder.agent.handoff import Handoff


async def test_a_thread_waits_while_the_queue_is_full_and_nothing_is_lost() -> None:
    handoff = Handoff("d1", size=1)
    handoff.bind(asyncio.get_running_loop())

    def send() -> None:
        for n in range(5):
            handoff.submit(n)

    sender = asyncio.create_task(asyncio.to_thread(send))
    got = [await handoff.queue.get() for _ in range(5)]
    await sender
    assert got == [0, 1, 2, 3, 4]
    assert handoff.overflow == 0


async def test_on_the_loop_a_full_queue_drops_and_counts() -> None:
    handoff = Handoff("d1", size=1)
    handoff.bind(asyncio.get_running_loop())
    handoff.submit("first")  # on the loop: never blocks
    handoff.submit("second")
    assert handoff.overflow == 1
    assert handoff.queue.qsize() == 1


async def test_posts_from_callback_threads_arrive_in_order() -> None:
    handoff = Handoff("d1")
    handoff.bind(asyncio.get_running_loop())

    def post() -> None:
        for n in range(3):
            handoff.post(n)

    await asyncio.to_thread(post)
    assert [await handoff.queue.get() for _ in range(3)] == [0, 1, 2]


def test_nothing_is_taken_while_the_agent_is_not_running() -> None:
    handoff = Handoff("d1")
    with pytest.raises(AgentNotRunningError):
        handoff.submit("press")
    handoff.post("edge")  # a late gpiozero callback: dropped, not raised into its thread
    assert handoff.queue.empty()
