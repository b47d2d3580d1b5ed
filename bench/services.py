"""The system under test: Mosquitto, ``edgeorder ordercore`` and ``edgeorder ingest``, each its
own process, configured as in production (except anonymous MQTT on loopback).

``workers`` ingest processes share the device stream through a shared subscription
(``--shared-group ingest``) and one database: the SQLite file in the work directory (one
worker only), or the PostgreSQL of ``db_url``. Each worker keeps its MQTT client id across
restarts (its persistent session holds what the broker queued for it meanwhile)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from edgeorder.bench.procs import ResourceUsage, ServiceProcess, read_usage
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.pg import APPLICATION_NAME
from edgeorder.ingest.store.registry import add_device
from edgeorder.protocol import ButtonMapping, ReorderAction
from tests.support.mosquitto import MosquittoServer
from tests.support.net import free_port

__all__ = ["BENCH_SKU", "Services", "register_devices", "scratch_database"]

BENCH_SKU = "COFFEE-1KG"
ORDERCORE_READY = "ordercore_listening"
INGEST_READY = "mqtt.subscribed"


def register_devices(
    database: Database, devices: list[str], sku: str = BENCH_SKU, *, throttled: tuple[str, ...] = ()
) -> None:
    """Register every bench device in ingest's registry: single press reorders ``sku``.

    ``allow_parallel``: a real button waits for its order; a bench device presses again at
    once, and the order-in-flight throttle would (rightly) answer ``throttled``. The devices
    in ``throttled`` keep the throttle (a test of it across workers).
    """
    mapping = ButtonMapping(single=ReorderAction(sku=sku, quantity=1))
    with database.open() as conn:
        for device_id in devices:
            parallel = device_id not in throttled
            add_device(
                conn, device_id, mapping=mapping, env="dev", allow_parallel=parallel, actor="bench"
            )


@dataclass
class Services:
    """Start/stop the three processes of the chain under one work directory."""

    work_dir: Path
    ingest_args: list[str] = field(default_factory=list)
    workers: int = 1
    db_url: str | None = None
    # prefixed: a token_urlsafe may start with "-", which argparse takes for an option
    token: str = field(default_factory=lambda: "bench_" + secrets.token_urlsafe(16))
    """The order core's admin token: the bench's own look at every order."""
    ingest_token: str = field(default_factory=lambda: "bench_" + secrets.token_urlsafe(16))
    """ingest's token, the order core's app principal, as a deployment configures it."""
    ordercore_port: int = field(default_factory=free_port)
    broker: MosquittoServer | None = None
    ordercore: ServiceProcess | None = None
    ingests: list[ServiceProcess] = field(default_factory=list)
    ingest_ports: list[int] = field(default_factory=list)

    @property
    def database(self) -> Database:
        return Database.for_service(self.work_dir / "ingest", self.db_url)

    @property
    def ingest(self) -> ServiceProcess | None:
        """The first worker (the only one with SQLite)."""
        return self.ingests[0] if self.ingests else None

    def start_broker(self) -> MosquittoServer:
        self.broker = MosquittoServer(self.work_dir / "mosquitto").start()
        return self.broker

    @property
    def ordercore_url(self) -> str:
        return f"http://127.0.0.1:{self.ordercore_port}"

    def start_ordercore(self) -> ServiceProcess:
        """Start the order core; again on the same port and data after a stop."""
        if self.ordercore is not None:
            return self.ordercore.start()

        def make(port: int) -> ServiceProcess:
            self.ordercore_port = port
            args = [
                "ordercore",
                "--port",
                str(port),
                "--data-dir",
                str(self.work_dir / "ordercore"),
                f"--token=bench={self.token}:role=admin",
                f"--token=ingest={self.ingest_token}:role=app",
                "--seed-catalog",
            ]
            return ServiceProcess(
                "ordercore",
                args,
                ready_mark=ORDERCORE_READY,
                log_path=self.work_dir / "ordercore.log",
            )

        self.ordercore = _start_on_free_port(make, self.ordercore_port)
        return self.ordercore

    def start_ingest(
        self, devices: list[str], *, throttled: tuple[str, ...] = ()
    ) -> list[ServiceProcess]:
        """Register ``devices``, then start every worker (each ready once subscribed)."""
        assert self.broker is not None
        assert self.ordercore is not None
        if self.db_url is None and self.workers > 1:
            raise ValueError("several ingest workers need a shared database: give --db-url")
        register_devices(self.database, devices, throttled=throttled)
        for n in range(self.workers):
            self.ingests.append(_start_on_free_port(partial(self._worker, n), free_port()))
        return self.ingests

    def _worker(self, n: int, port: int) -> ServiceProcess:
        assert self.broker is not None
        if len(self.ingest_ports) > n:
            self.ingest_ports[n] = port
        else:
            self.ingest_ports.append(port)
        args = [
            "ingest",
            "--data-dir",
            str(self.work_dir / ("ingest" if n == 0 else f"ingest-{n}")),
            "--mqtt-url",
            self.broker.url,
            "--mqtt-username",
            "ingest",
            "--mqtt-password",
            "bench",
            "--mqtt-client-id",
            f"edgeorder-ingest-{n}",
            "--http-port",
            str(port),
            "--ordercore-url",
            self.ordercore_url,
            f"--ordercore-token={self.ingest_token}",
        ]
        if self.db_url is not None:
            args += [f"--db-url={self.db_url}", "--shared-group", "ingest"]
        name = "ingest" if self.workers == 1 else f"ingest-{n}"
        return ServiceProcess(
            name,
            [*args, *self.ingest_args],
            ready_mark=INGEST_READY,
            log_path=self.work_dir / f"{name}.log",
        )

    def usage(self) -> dict[str, ResourceUsage]:
        """CPU seconds so far and peak RSS of each service (the order core across restarts)."""
        out = {svc.name: svc.usage() for svc in self.ingests}
        if self.ordercore is not None:
            out["ordercore"] = self.ordercore.usage()
        proc = getattr(self.broker, "_proc", None)
        if proc is not None and proc.poll() is None:
            out["mosquitto"] = read_usage(proc.pid)
        if self.db_url is not None:
            out["postgres"] = postgres_usage(self.db_url)
        return out

    def stop(self) -> None:
        """Graceful stop in reverse order of the chain; safe to call twice."""
        for svc in (*self.ingests, self.ordercore):
            if svc is not None:
                svc.stop()
        if self.broker is not None:
            self.broker.stop()


def _start_on_free_port(
    make: Callable[[int], ServiceProcess], port: int, attempts: int = 3
) -> ServiceProcess:
    """Start ``make(port)``; if another process took the port between ``free_port()`` and the
    bind (other test suites share the machine), try again on a new one."""
    for attempt in range(attempts):
        service = make(port)
        try:
            return service.start()
        except RuntimeError:
            taken = any("address already in use" in line for line in service.tail)
            if not taken or attempt == attempts - 1:
                raise
            port = free_port()
    raise AssertionError("unreachable")


def postgres_usage(db_url: str) -> ResourceUsage:
    """CPU seconds of the PostgreSQL backends serving ingest's sessions right now (the server's
    background processes -- WAL writer, checkpointer -- serve every database, and are left
    out). Backends of sessions that ended are not counted: sample while the workers run."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        pids = [
            int(r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                [APPLICATION_NAME],
            ).fetchall()
        ]
    cpu, rss = 0.0, 0.0
    for pid in pids:
        try:
            usage = read_usage(pid)
        except OSError:  # the session ended meanwhile, or the server is on another host
            continue
        cpu += usage.cpu_s
        rss = max(rss, usage.peak_rss_mb)
    return ResourceUsage(cpu, rss)


@contextmanager
def scratch_database(server_url: str, *, keep: bool = False) -> Iterator[str]:
    """A new database on the server of ``server_url`` (whose user may CREATE DATABASE) for one
    run: every run starts from empty tables. Dropped afterwards unless ``keep``."""
    import psycopg

    name = f"edgeorder_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
