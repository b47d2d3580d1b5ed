"""The whole chain as real processes on one machine, to SIGKILL and restart one by one:
Mosquitto (persistence on, passwords and ACL as in production), ``edgeorder ordercore``,
``edgeorder ingest`` and one ``edgeorder agent --simulate`` per device (pressed through its
stdin). Every process's output goes to a file under the run's directory (read it after a
failure) and through a pump thread that wakes ``Cluster.activity`` at every line.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import tomli_w

from edgeorder import protocol as p
from edgeorder.ingest.cli.broker_auth import render_acl, render_passwd
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.support.mosquitto import MosquittoServer
from tests.support.net import free_port
from tests.support.proc import spawn_cli

CHECK_MIN_S = 0.2
CHECK_MAX_S = 1.0
SKU = "COFFEE-1KG"  # in the order core's bundled demo catalog
TOKEN = "chaos-core-token"


class Proc:
    """One ``edgeorder`` subprocess that can be killed and started again with the same
    arguments. ``start`` returns once a line containing ``ready`` appeared."""

    def __init__(
        self, name: str, args: list[str], ready: str, log_path: Path, activity: threading.Condition
    ) -> None:
        self.name, self.args, self.ready = name, args, ready
        self.log_path = log_path
        self.activity = activity
        self.lines: list[str] = []  # every incarnation's output, in order
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] = log_path.open("a")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        self._log.write(f"=== start {self.starts}\n")
        self._proc = spawn_cli(*self.args)
        mark = len(self.lines)
        threading.Thread(target=self._pump, args=(self._proc,), daemon=True).start()
        with self.activity:
            if not self.activity.wait_for(lambda: self._ready_since(mark), timeout):
                raise TimeoutError(f"{self.name} not ready in {timeout}s; see {self.log_path}")
        if not self.alive:
            raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}")

    def _ready_since(self, mark: int) -> bool:
        return any(self.ready in line for line in self.lines[mark:]) or not self.alive

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self.activity:
                self.lines.append(line)
                self._log.write(line)
                self.activity.notify_all()
        with self.activity:
            self.activity.notify_all()

    def send(self, line: str) -> bool:
        """Write a line to its stdin; False if it is not running (or dies meanwhile)."""
        proc = self._proc
        if proc is None or proc.poll() is not None or proc.stdin is None:
            return False
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(30)
            self._close_stdin()

    def stop(self) -> int | None:
        """SIGTERM (a clean shutdown); its exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(30)
        self._close_stdin()
        return self._proc.returncode

    def _close_stdin(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()

    def close(self) -> None:
        self.stop()
        self._log.close()

    def json_lines(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines whose ``event`` is ``event`` (other output is skipped)."""
        out = []
        for line in list(self.lines):
            if f'"{event}"' not in line:
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == event:
                    out.append(record)
        return out


@dataclass(frozen=True)
class Device:
    device_id: str
    config: Path
    outbox: Path


class Cluster:
    """Provisions and runs the chain under ``root``; ``close()`` stops everything."""

    def __init__(self, root: Path, devices: int, *, throttled: int = 1) -> None:
        self.root = root
        self.activity = threading.Condition()
        self.ingest_dir = root / "ingest"
        self.core_dir = root / "ordercore"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        auth = root / "mosquitto-auth"
        auth.mkdir(parents=True, exist_ok=True)
        ingest_password = secrets.token_urlsafe(16)
        (root / "ingest.pass").write_text(ingest_password + "\n")
        self.broker = MosquittoServer(
            root / "mosquitto", password_file=auth / "passwd", acl_file=auth / "acl"
        )
        self.devices = self._provision(devices, throttled, auth, ingest_password)
        core_port = free_port()
        self.core_url = f"http://127.0.0.1:{core_port}"
        self.ordercore = self._proc(
            "ordercore",
            ["ordercore", "--port", str(core_port), "--data-dir", str(self.core_dir)],
            "ordercore_listening",
            ("--token", TOKEN, "--seed-catalog"),
        )
        self.ingest = self._proc(
            "ingest",
            [
                "ingest",
                *("--data-dir", str(self.ingest_dir), "--mqtt-url", self.broker.url),
                *("--mqtt-username", "ingest", "--mqtt-client-id", "chaos-ingest"),
                *("--mqtt-password-file", str(root / "ingest.pass")),
                *("--http-port", str(free_port()), "--ordercore-url", self.core_url),
                *("--ordercore-token", TOKEN, "--retry-base-s", "0.05", "--retry-max-s", "0.5"),
            ],
            "ingest.started",
        )
        self.agents = {
            d.device_id: self._proc(
                d.device_id, ["agent", "--config", str(d.config), "--simulate"], "agent.started"
            )
            for d in self.devices
        }

    def _proc(self, name: str, args: list[str], ready: str, extra: tuple[str, ...] = ()) -> Proc:
        return Proc(name, [*args, *extra], ready, self.logs / f"{name}.log", self.activity)

    def _provision(
        self, count: int, throttled: int, auth: Path, ingest_password: str
    ) -> list[Device]:
        """Devices in ingest's registry (the last ``throttled`` without parallel orders), the
        broker's password file and ACL, and each agent's firmware-config."""
        db = open_db(self.ingest_dir / "ingest.db")
        devices = []
        try:
            registry.ensure_service_account(db, "ingest", ingest_password, actor="test")
            for n in range(count):
                device_id = f"chaos-{n:02d}"
                _, password = registry.add_device(
                    db,
                    device_id,
                    mapping=p.ButtonMapping(single=p.ReorderAction(sku=SKU)),
                    allow_parallel=n < count - throttled,
                )
                devices.append(self._agent_config(device_id, password))
            hashes = {**registry.device_hashes(db), **registry.service_account_hashes(db)}
        finally:
            db.conn.close()
        (auth / "passwd").write_text(render_passwd(hashes))
        (auth / "acl").write_text(render_acl(["ingest"]))
        return devices

    def _agent_config(self, device_id: str, password: str) -> Device:
        outbox = self.root / "agents" / f"{device_id}.db"
        config = self.root / "agents" / f"{device_id}.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "device_id": device_id,
            "mqtt": {
                "url": self.broker.url,
                "username": device_id,
                "password": password,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 1.0,
                "keepalive_s": 5,
            },
            "outbox": {
                "path": str(outbox),
                "retry_min_s": 0.5,
                "retry_max_s": 2.0,
                "ask_min_s": 0.5,
                "ask_max_s": 2.0,
                "keep_settled": 10_000_000,  # remember every press: the run checks them all
            },
        }
        config.write_text(tomli_w.dumps(doc))
        return Device(device_id, config, outbox)

    def start(self) -> None:
        self.broker.start()
        self.ordercore.start()
        self.ingest.start()
        for agent in self.agents.values():
            agent.start()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds; False after ``timeout``. It is checked when some
        process writes a line (the processes' logs are the only news of their progress), at
        most every ``CHECK_MIN_S``, and every ``CHECK_MAX_S`` while all are quiet."""
        deadline = time.monotonic() + timeout
        checked = -CHECK_MIN_S
        while True:
            now = time.monotonic()
            if now - checked >= CHECK_MIN_S:
                checked = now
                if predicate():
                    return True
            if now >= deadline:
                return False
            # just checked: wait for news (or CHECK_MAX_S); else for the rest of the spacing
            wait_s = CHECK_MAX_S if checked == now else checked + CHECK_MIN_S - now
            with self.activity:
                self.activity.wait(max(0.0, min(wait_s, deadline - now)))

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()
        self.ingest.close()
        self.ordercore.close()
        self.broker.stop()


def read_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a SQLite file another process may be writing."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
