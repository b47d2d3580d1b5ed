"""The system under test: Mosquitto, ``edgeorder ordercore`` and ``edgeorder ingest``, each its
own process, configured as in production (except anonymous MQTT on loopback)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeorder.bench.procs import ResourceUsage, ServiceProcess, read_usage
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import add_device
from edgeorder.protocol import ButtonMapping, ReorderAction
from tests.support.mosquitto import MosquittoServer
from tests.support.net import free_port

__all__ = ["BENCH_SKU", "Services", "register_devices"]

BENCH_SKU = "COFFEE-1KG"
ORDERCORE_READY = "ordercore_listening"
INGEST_READY = "mqtt.subscribed"


def register_devices(ingest_dir: Path, devices: list[str], sku: str = BENCH_SKU) -> None:
    """Register every bench device in ingest's registry: single press reorders ``sku``.

    ``allow_parallel``: a real button waits for its order; a bench device presses again at
    once, and the order-in-flight throttle would (rightly) answer ``throttled``.
    """
    db = open_db(ingest_dir / "ingest.db")
    try:
        mapping = ButtonMapping(single=ReorderAction(sku=sku, quantity=1))
        for device_id in devices:
            add_device(
                db, device_id, mapping=mapping, env="dev", allow_parallel=True, actor="bench"
            )
    finally:
        db.conn.close()


@dataclass
class Services:
    """Start/stop the three processes of the chain under one work directory."""

    work_dir: Path
    ingest_args: list[str] = field(default_factory=list)
    # prefixed: a token_urlsafe may start with "-", which argparse takes for an option
    token: str = field(default_factory=lambda: "bench_" + secrets.token_urlsafe(16))
    """The order core's admin token: the bench's own look at every order."""
    ingest_token: str = field(default_factory=lambda: "bench_" + secrets.token_urlsafe(16))
    """ingest's token, the order core's app principal, as a deployment configures it."""
    ordercore_port: int = field(default_factory=free_port)
    broker: MosquittoServer | None = None
    ordercore: ServiceProcess | None = None
    ingest: ServiceProcess | None = None

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

    def start_ingest(self, devices: list[str]) -> ServiceProcess:
        assert self.broker is not None
        assert self.ordercore is not None
        data = self.work_dir / "ingest"
        register_devices(data, devices)
        broker_url = self.broker.url

        def make(port: int) -> ServiceProcess:
            args = [
                "ingest",
                "--data-dir",
                str(data),
                "--mqtt-url",
                broker_url,
                "--mqtt-username",
                "ingest",
                "--mqtt-password",
                "bench",
                "--http-port",
                str(port),
                "--ordercore-url",
                self.ordercore_url,
                f"--ordercore-token={self.ingest_token}",
                *self.ingest_args,
            ]
            return ServiceProcess(
                "ingest", args, ready_mark=INGEST_READY, log_path=self.work_dir / "ingest.log"
            )

        self.ingest = _start_on_free_port(make, free_port())
        return self.ingest

    def usage(self) -> dict[str, ResourceUsage]:
        """CPU seconds so far and peak RSS of each service (the order core across restarts)."""
        out = {}
        for name, svc in (("ingest", self.ingest), ("ordercore", self.ordercore)):
            if svc is not None:
                out[name] = svc.usage()
        proc = getattr(self.broker, "_proc", None)
        if proc is not None and proc.poll() is None:
            out["mosquitto"] = read_usage(proc.pid)
        return out

    def stop(self) -> None:
        """Graceful stop in reverse order of the chain; safe to call twice."""
        for svc in (self.ingest, self.ordercore):
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
