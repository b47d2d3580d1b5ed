"""A stand-in for systemd on the test hosts (the test machine does not run it).

Each host gets ``/usr/local/sbin/systemctl``: a tiny client that forwards its arguments to
this process over a Unix socket and prints the answer, so the README's ``systemctl enable
--now edgeorder-ingest`` runs as written. Services are started by ``tests.deploy.unit_exec``
inside the host (the unit's user, directories, environment, sandbox, umask), as children of
the test: their output is kept (the journal), waited on line by line, and they are stopped at
the end. ``Type=notify`` services are ready when they send ``READY=1`` (Mosquitto does);
``Type=exec`` ones once started. ``reload`` runs ``ExecReload=`` (Debian's Mosquitto unit:
``kill -HUP $MAINPID``) as SIGHUP to the main process.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.hosts import Host
from tests.deploy.support import notify_socket, wait_ready
from tests.deploy.units import load_unit

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")

CLIENT = """#!/usr/bin/python3
# systemctl for the multi-host test: asks the test's systemd stand-in (tests/deploy/systemd.py).
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["EDGEORDER_TEST_SYSTEMD"])
request = {"host": os.environ["EDGEORDER_TEST_HOST"], "argv": sys.argv[1:]}
s.sendall(json.dumps(request).encode() + b"\\n")
reply = json.loads(s.makefile().readline())
sys.stdout.write(reply["out"])
sys.exit(reply["rc"])
"""


@dataclass
class Service:
    host: Host
    name: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    pumping: threading.Thread | None = None

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60) -> str:
        """The first output line (from the start) that matches; blocks on new lines."""

        def found() -> str | None:
            return next((line for line in self.lines if predicate(line)), None)

        with self.cond:
            ok = self.cond.wait_for(
                lambda: found() is not None or self.proc.poll() is not None, timeout
            )
            line = found()
        if line is None:
            tail = "\n".join(self.lines[-30:])
            state = "exited" if self.proc.poll() is not None else "running"
            raise AssertionError(f"{self.host.name}/{self.name} ({state}, waited={ok}):\n{tail}")
        return line

    def count(self, predicate: Callable[[str], bool]) -> int:
        with self.cond:
            return sum(1 for line in self.lines if predicate(line))

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()


class Systemd:
    """The systemd of every test host, answering their ``systemctl``."""

    def __init__(
        self, workdir: Path, hosts: dict[str, Host], *, append: dict[str, list[str]] | None = None
    ) -> None:
        """``append``: unit name -> arguments added to its ExecStart= (the Pis' agent gets
        ``--simulate``: no GPIO chip here, gpiozero's MockFactory instead of lgpio)."""
        self.workdir, self.hosts, self.append = workdir, hosts, append or {}
        self.services: dict[tuple[str, str], Service] = {}
        self.socket_path = workdir / "systemd.sock"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.socket_path))
        self.socket_path.chmod(0o777)
        self._server.listen()
        self._serving = threading.Thread(target=self._serve, daemon=True)
        self._serving.start()

    def install_client(self, host: Host) -> dict[str, str]:
        """Put ``systemctl`` on the host; returns the environment its shells need."""
        host.write("/usr/local/sbin/systemctl", CLIENT.encode(), mode=0o755)
        return {"EDGEORDER_TEST_SYSTEMD": str(self.socket_path), "EDGEORDER_TEST_HOST": host.name}

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                request = json.loads(conn.makefile().readline())
                try:
                    rc, out = self.systemctl(request["host"], request["argv"])
                except Exception as exc:  # the client reports it, the test sees rc 1
                    rc, out = 1, f"systemd stand-in: {exc}\n"
                conn.sendall(json.dumps({"rc": rc, "out": out}).encode() + b"\n")

    def systemctl(self, host_name: str, argv: list[str]) -> tuple[int, str]:
        host = self.hosts[host_name]
        verb, rest = argv[0], [a for a in argv[1:] if not a.startswith("-")]
        names = [n if "." in n else f"{n}.service" for n in rest]
        if verb == "daemon-reload":
            return 0, ""
        if verb == "enable" and "--now" not in argv:
            return 0, ""
        for name in names:
            if verb in ("start", "enable"):
                self.start(host, name)
            elif verb == "restart":
                self.stop(host, name)
                self.start(host, name)
            elif verb == "stop":
                self.stop(host, name)
            elif verb == "reload":
                self.service(host.name, name).proc.send_signal(signal.SIGHUP)
            else:
                return 1, f"systemd stand-in: no '{verb}'\n"
        return 0, ""

    def unit_file(self, host: Host, name: str) -> str:
        for directory in UNIT_DIRS:
            if host.path(f"{directory}/{name}").exists():
                return f"{directory}/{name}"
        raise FileNotFoundError(f"Unit {name} not found on {host.name}")

    def start(self, host: Host, name: str) -> Service:
        key = (host.name, name)
        if key in self.services and self.services[key].proc.poll() is None:
            return self.services[key]
        inside = self.unit_file(host, name)
        unit = load_unit(host.path(inside))
        argv = [sys.executable, "-m", "tests.deploy.unit_exec", inside]
        argv += [f"--append={arg}" for arg in self.append.get(name, [])]
        notify = None
        if unit.one("Type") == "notify":
            path = self.workdir / f"notify-{host.name}-{name}.sock"
            path.unlink(missing_ok=True)
            notify = notify_socket(path)
            argv += ["--setenv", f"NOTIFY_SOCKET={path}"]
        proc = subprocess.Popen(
            host.command(argv, cwd=ROOT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        service = Service(host, name, proc)
        pump = service.pumping = threading.Thread(target=service.pump, daemon=True)
        pump.start()
        self.services[key] = service
        if notify is not None:
            try:
                wait_ready(notify, proc, 30)
            except (RuntimeError, TimeoutError) as exc:
                pump.join(timeout=5)
                raise RuntimeError(f"{name}: {exc}:\n" + "\n".join(service.lines[-20:])) from None
            finally:
                notify.close()
        return service

    def service(self, host_name: str, name: str) -> Service:
        return self.services[(host_name, name if "." in name else f"{name}.service")]

    def stop(self, host: Host, name: str) -> None:
        service = self.services.get((host.name, name))
        if service is None or service.proc.poll() is not None:
            return
        service.proc.terminate()
        try:
            service.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait()

    def close(self) -> None:
        """Kill what still runs and release everything the stand-in holds in the test
        process: the services' pipes and pump threads, the socket and its server thread."""
        for service in self.services.values():
            if service.proc.poll() is None:
                service.proc.kill()
                service.proc.wait()
            if service.pumping is not None:
                service.pumping.join(timeout=10)  # EOF once the service and its children exit
            for pipe in (service.proc.stdin, service.proc.stdout):
                if pipe is not None:
                    pipe.close()
        self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._server.close()
        self._serving.join(timeout=10)
