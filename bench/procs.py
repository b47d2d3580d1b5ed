"""The services under test as separate processes, as in production, and what they cost.

Each service is ``python -m edgeorder COMMAND ...`` of this checkout. Its output (JSON logs) is
pumped into a log file by one thread, which also signals readiness when the service's own
"listening" log line appears (no polling). CPU seconds and peak RSS come from /proc.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.proc import ROOT, cli_command, cli_env

__all__ = ["ResourceUsage", "ServiceProcess", "read_usage", "self_usage"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ResourceUsage:
    """CPU seconds (user + system) so far and peak resident memory (VmHWM) of one process."""

    cpu_s: float
    peak_rss_mb: float


def read_usage(pid: int) -> ResourceUsage:
    """Read /proc/PID/stat (utime, stime) and /proc/PID/status (VmHWM); raises OSError."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; the fields after its closing parenthesis don't.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    hwm_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm_kb = int(line.split()[1])
    return ResourceUsage(cpu_s=cpu, peak_rss_mb=hwm_kb / 1024)


def self_usage() -> ResourceUsage:
    """The bench process's own CPU seconds (every thread) and peak RSS."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ResourceUsage(cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024)


class ServiceProcess:
    """``edgeorder ARGS`` in the background, logging to ``log_path``.

    ``start()`` returns once a log line contains ``ready_mark``; raises RuntimeError if the
    process exits first or ``timeout`` passes, with the tail of its log.
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        ready_mark: str,
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.ready_mark = ready_mark
        self.log_path = log_path
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.tail: list[str] = []
        self.usage_total = ResourceUsage(0.0, 0.0)
        """CPU and peak RSS summed/maxed over previous runs of this service (restarts)."""

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        self.proc = subprocess.Popen(
            cli_command(*self.args),
            env=cli_env(**self.env),
            cwd=ROOT,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        ready = threading.Event()
        log = self.log_path.open("a")
        assert self.proc.stdout is not None
        threading.Thread(
            target=self._pump,
            args=(self.proc.stdout, log, ready),
            daemon=True,
            name=f"{self.name}-log",
        ).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop(kill=True)
            raise RuntimeError(
                f"{self.name} did not start ({' '.join(self.args)}):\n" + "\n".join(self.tail)
            )
        return self

    def _pump(self, stream: IO[str], log: IO[str], ready: threading.Event) -> None:
        with log:
            for line in stream:
                log.write(line)
                self.tail = [*self.tail[-19:], line.rstrip()]
                if not ready.is_set() and self.ready_mark in line:
                    ready.set()
        ready.set()  # exited: wake the waiter, who sees poll() is not None

    def usage(self) -> ResourceUsage:
        """Usage of the running process plus that of earlier runs (CPU summed, RSS maxed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.usage_total
        now = read_usage(self.proc.pid)
        return ResourceUsage(
            cpu_s=self.usage_total.cpu_s + now.cpu_s,
            peak_rss_mb=max(self.usage_total.peak_rss_mb, now.peak_rss_mb),
        )

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, *, kill: bool = False, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful) or SIGKILL; waits; returns the exit code."""
        if self.proc is None:
            return None
        self.usage_total = self.usage()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused process can't handle SIGTERM
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
