"""``edgeorder agent --simulate`` as a person drives it: commands on stdin, LED lines out."""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.agent.cli import parse_command
from tests.agent.support import Responder
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe
from tests.support.net import free_port
from tests.support.proc import run_cli, spawn_cli


class Lines:
    """Reads a process's output on a thread; ``expect`` blocks until a matching line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def expect(self, wanted: str, timeout: float = 20) -> None:
        while True:
            try:
                line = self._q.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {wanted!r}; saw {self.seen[-15:]}") from None
            if line is None:
                raise AssertionError(f"exited before {wanted!r}; saw {self.seen[-15:]}")
            self.seen.append(line)
            if line == wanted:
                return

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "sim-01.toml"
    path.write_text(f"""
device_id = "sim-01"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
reconnect_min_s = 0.1
reconnect_max_s = 1.0
[outbox]
path = "outbox.db"
[sensor]
type = "mcp3008"
name = "beans"
channel = 0
threshold = 0.2
""")
    return path


@pytest.mark.integration
def test_simulate_press_to_ordered_and_sigterm(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    watcher = MqttProbe(mosquitto.port)
    watcher.subscribe(p.device_topic("sim-01", p.Channel.PRESENCE))
    responder = Responder(mosquitto.port, then=p.State.ORDERED)
    proc = spawn_cli("agent", "--config", str(write_config(tmp_path, mosquitto.port)), "--simulate")
    out = Lines(proc)
    try:
        out.expect("led off idle")  # connected, nothing to show
        out.send("press")
        out.expect("led press_ack pressed")
        out.expect("led ordered ordered")
        out.send("sensor beans 0.5")
        out.send("sensor beans 0.1")  # crossing: an event, answered like a press
        responder.wait_for(lambda m: m.topic.endswith("/events") and b"sensor" in m.payload)
        watcher.wait_for(lambda m: json.loads(m.payload)["online"] is True)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        watcher.wait_for(lambda m: json.loads(m.payload)["online"] is False)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()
        responder.close()
    events = [
        p.decode(p.Event, m.payload) for m in responder.messages if m.topic.endswith("/events")
    ]
    triggers = {e.event_id: e.trigger for e in events}
    assert sorted(triggers.values()) == ["sensor:beans", "single"]


def test_simulate_offline_then_quit(tmp_path: Path) -> None:
    proc = spawn_cli("agent", "--config", str(write_config(tmp_path, free_port())), "--simulate")
    out = Lines(proc)
    try:
        out.expect("led offline offline")  # no broker: not fatal
        for command in ("press", "double", "long"):
            out.send(command)
            out.expect("led press_ack pressed")
            out.expect("led offline offline")
        out.send("jump")  # bad input: an error line, and it goes on
        out.expect(
            "error: unknown command 'jump'; use: press | double | long | sensor NAME VALUE | quit"
        )
        out.send("quit")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    db = sqlite3.connect(tmp_path / "outbox.db")  # relative to the TOML's folder
    clicks = [
        p.decode(p.Event, bytes(r[0])).trigger
        for r in db.execute("SELECT payload FROM events ORDER BY n")
    ]
    db.close()
    assert clicks == ["single", "double", "long"]  # stored, waiting for the broker


def test_bad_config_fails_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('device_id = "x y"\n[mqtt]\nurl = "ftp://h"\n[button]\npin = -1\n')
    result = run_cli("agent", "--config", str(path))
    assert result.returncode == 2
    for field in ("device_id", "mqtt", "button.pin"):
        assert f"{path}: {field}: " in result.stderr


def test_help_lists_options() -> None:
    result = run_cli("agent", "--help")
    assert result.returncode == 0
    assert "--config FILE" in result.stdout
    assert "--simulate" in result.stdout


def test_parse_command() -> None:
    assert parse_command("press\n") == ("press", ("single",))
    assert parse_command("LONG") == ("press", ("long",))
    assert parse_command("sensor beans 2.5") == ("sensor", ("beans", 2.5))
    assert parse_command("  ") is None
    assert parse_command("quit") == ("quit", ())
    with pytest.raises(ValueError, match="not a number"):
        parse_command("sensor beans lots")
    with pytest.raises(ValueError, match="unknown command"):
        parse_command("press twice")


def test_unwritable_outbox_is_a_clear_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, free_port())
    (tmp_path / "outbox.db").mkdir()  # a directory where the database file should be
    result = run_cli("agent", "--config", str(path), "--simulate")
    assert result.returncode == 1
    assert f"cannot open outbox {tmp_path / 'outbox.db'}" in result.stderr
