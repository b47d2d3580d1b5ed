"""``IngestService.start`` releases what it opened when a step fails, and says which step.

Each step is made to fail in turn -- for real where the failure can be made for real (a
database file that is not one, a PostgreSQL nobody listens for, the HTTP port taken), by
making the one function the step calls raise where it cannot (a read or a write job that
fails) -- and after the ``StartError`` nothing the start opened is left: no thread, no file
descriptor (database files, sockets), no task.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgeorder.ingest.bus import Bus
from edgeorder.ingest.cli.run import serve
from edgeorder.ingest.errors import StartError
from edgeorder.ingest.service import IngestService
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import ledger
from edgeorder.kit import ReaderClosedError, WriterClosedError
from tests.support.net import free_port


@dataclass(frozen=True)
class Opened:
    """What the process holds: its threads (but the loop's own executor, which asyncio keeps
    for ``to_thread`` until the loop closes), file descriptors and other tasks."""

    threads: frozenset[int]
    fds: dict[int, str]  # descriptor -> what it is (a path, socket:[inode], pipe:[inode])
    tasks: int

    @classmethod
    def now(cls) -> Opened:
        gc.collect()  # an object dropped with its sockets closes them here, not later
        threads = {t.ident or 0 for t in threading.enumerate() if not t.name.startswith("asyncio")}
        tasks = len(asyncio.all_tasks()) - 1  # not the test itself
        return cls(frozenset(threads), _descriptors(), tasks)

    def assert_nothing_new_since(self, before: Opened) -> None:
        """Named, so a failure says which thread, which descriptor (and what it points to)."""
        new = self.threads - before.threads
        left = [t.name for t in threading.enumerate() if (t.ident or 0) in new]
        assert not left, f"threads left running: {left}"
        opened = {fd: what for fd, what in self.fds.items() if before.fds.get(fd) != what}
        assert not opened, f"file descriptors left open: {opened}"
        assert self.tasks == 0, asyncio.all_tasks()


def _descriptors() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # the listing's own descriptor, closed already
            pass
    return found


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    """Nothing listens at ``mqtt_url``: the link keeps trying, which is no start failure."""
    return Settings(
        data_dir=tmp_path, mqtt_url=f"mqtt://127.0.0.1:{free_port()}", http_port=0, **extra
    )


async def _assert_released(service: IngestService, before: Opened) -> None:
    after = Opened.now()
    after.assert_nothing_new_since(before)
    with pytest.raises(WriterClosedError):
        service.writer.submit(lambda conn: None)
    with pytest.raises(ReaderClosedError):
        await service.reader(lambda conn: None)


async def test_a_database_file_that_is_not_one_fails_at_migrate(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.db_path.write_bytes(b"not a database, " * 512)
    service = IngestService(settings, Bus())
    before = Opened.now()
    with pytest.raises(StartError, match="migrate the database") as caught:
        await service.start(None)
    assert caught.value.step == "migrate the database"
    assert "not a database" in str(caught.value)  # the cause, said
    await _assert_released(service, before)


async def test_an_unreachable_postgresql_fails_at_migrate(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    service = IngestService(_settings(tmp_path, db_url=url), Bus())
    before = Opened.now()
    with pytest.raises(StartError, match="migrate the database"):
        await service.start(None)
    await _assert_released(service, before)


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise OSError("disk I/O error (injected)")


async def _raise_async(*args: Any, **kwargs: Any) -> Any:
    _raise()


Breaker = Callable[[IngestService, pytest.MonkeyPatch], None]
BREAKERS: dict[str, Breaker] = {
    # a read of the device registry fails (on the reader pool, whose threads it started)
    "load the devices": lambda s, mp: mp.setattr(s.devices, "reload", _raise_async),
    # the writer thread runs, its first job fails
    "start the writer": lambda s, mp: mp.setattr(ledger, "release_leases", _raise),
    # the writer and the reader have run; the delivery tracker's timer is set up
    "re-publish unconfirmed statuses": lambda s, mp: mp.setattr(
        ledger, "unconfirmed_statuses", _raise
    ),
    # the router and the outbox worker are running tasks when the poller cannot start
    "start the tasks": lambda s, mp: mp.setattr(s.sync, "poll_forever", _raise),
    # every task runs; the link is the last step
    "start the MQTT link": lambda s, mp: mp.setattr(s.link, "start", _raise),
}


@pytest.mark.parametrize("step", list(BREAKERS))
async def test_each_step_that_fails_releases_the_earlier_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    service = IngestService(_settings(tmp_path), Bus())
    BREAKERS[step](service, monkeypatch)
    before = Opened.now()
    with pytest.raises(StartError) as caught:
        await service.start("http://127.0.0.1:9")
    assert caught.value.step == step
    assert str(caught.value) == f"ingest could not start: {step}: disk I/O error (injected)"
    assert isinstance(caught.value.__cause__, OSError)
    assert not service.ready.is_set()
    await _assert_released(service, before)


async def test_a_broker_that_refuses_is_no_start_failure_and_stop_releases_all(
    tmp_path: Path,
) -> None:
    service = IngestService(_settings(tmp_path), Bus())
    before = Opened.now()
    await service.start(None)  # the link keeps trying in the background (connection refused)
    assert service.ready.is_set()
    assert not service.link.subscribed.is_set()
    await service.stop()
    await _assert_released(service, before)


async def test_the_http_port_taken_stops_the_started_service(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = _settings(tmp_path).model_copy(update={"http_port": port})
        before = Opened.now()
        with pytest.raises(OSError, match=r"address already in use|Errno 98"):
            await serve(settings)
        after = Opened.now()
    after.assert_nothing_new_since(before)
