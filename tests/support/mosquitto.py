"""Start a real Mosquitto on a free port with the project's config (deploy/mosquitto/).

Readiness is read from the broker's own log line ("mosquitto version X running"), never polled.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "mosquitto" / "test.conf.template"
READY_MARK = " running"
"""End of mosquitto's "mosquitto version X running" line, logged once its listeners accept.
("Opening ipv4 listen socket" comes before bind/listen: a client connecting then is refused.)"""


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, or None (tests then skip with that reason)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


class MosquittoServer:
    """One Mosquitto process; ``stop()``/``start()`` again on the same port and data dir.

    ``password_file``/``acl_file``: when given, anonymous access is off (as in production).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto binary not found (apt-get install mosquitto)")
        self.binary = binary
        self.port = port or free_port()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.data_dir / "mosquitto.conf"
        self.log_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._write_conf(password_file, acl_file)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self, password_file: Path | None, acl_file: Path | None) -> None:
        if password_file is None:
            auth = "allow_anonymous true"
        else:
            auth = f"allow_anonymous false\npassword_file {password_file}"
            if acl_file is not None:
                auth += f"\nacl_file {acl_file}"
        if os.geteuid() == 0:
            # Started as root, Mosquitto drops to the `mosquitto` user, which cannot write
            # persistence into the test's root-owned tmp dir: sessions would not survive a
            # restart. Stay root for the test broker (production runs as `mosquitto`).
            auth += "\nuser root"
        text = TEMPLATE.read_text().format(port=self.port, data_dir=self.data_dir, auth=auth)
        self.conf_path.write_text(text)

    def start(self, timeout: float = 15.0) -> MosquittoServer:
        """Start the broker and return once it listens; raises RuntimeError with its log."""
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready: queue.Queue[bool] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, args=(self._proc, ready), daemon=True)
        self._pumping.start()
        try:
            if not ready.get(timeout=timeout):
                raise RuntimeError("mosquitto exited:\n" + "\n".join(self.log_lines[-20:]))
        except queue.Empty:
            self.stop()
            raise RuntimeError("mosquitto did not start:\n" + "\n".join(self.log_lines)) from None
        return self

    def _pump(self, proc: subprocess.Popen[str], ready: queue.Queue[bool]) -> None:
        assert proc.stdout is not None
        signalled = False
        for line in proc.stdout:
            self.log_lines.append(line.rstrip())
            if not signalled and line.rstrip().endswith(READY_MARK):
                signalled = True
                ready.put(True)
        if not signalled:
            ready.put(False)

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (saves persistence) or SIGKILL; waits for the process to end."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._pumping.join(timeout=10)  # the log's end: the pipe closes with the process
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> MosquittoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
