"""Run schemathesis against a real HTTP service of this checkout, and the service itself.

``Service`` starts an ``edgeorder`` subcommand as a process, keeps draining its log (a full
pipe would stall it under thousands of requests) and waits for its ready line on an event,
not a sleep. ``run_schemathesis`` runs the ``st`` CLI with a bounded number of examples and a
fixed seed, and returns its exit code and report.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.proc import ROOT, cli_command, cli_env

__all__ = ["Service", "run_schemathesis", "schemathesis_config"]

MAX_EXAMPLES = 20
SEED = 1


@dataclass
class Service:
    """An ``edgeorder`` subcommand running in the background."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _ready_text: str = ""
    _new_line: threading.Condition = field(default_factory=threading.Condition)
    _draining: threading.Thread | None = None

    def start(self, ready_text: str, timeout: float = 60) -> Service:
        self._ready_text = ready_text
        self._proc = subprocess.Popen(
            cli_command(*self.args),
            env=cli_env(**self.env),
            cwd=ROOT,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._draining = threading.Thread(target=self._drain, daemon=True)
        self._draining.start()
        if not self._ready.wait(timeout) or self._proc.poll() is not None:
            self.stop()
            raise AssertionError("service did not start:\n" + "".join(self.lines[-50:]))
        return self

    def _drain(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._new_line:
                self.lines.append(line)
                self._new_line.notify_all()
            if self._ready_text in line:
                self._ready.set()
        self._ready.set()  # exited: let start() see it

    def wait_for(self, text: str, since: int = 0, timeout: float = 10) -> list[str]:
        """The log lines from ``since`` up to the first one containing ``text``."""

        def found() -> int | None:
            return next((i for i in range(since, len(self.lines)) if text in self.lines[i]), None)

        with self._new_line:
            if not self._new_line.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no {text!r} in the log:\n" + "".join(self.lines[since:]))
            end = found()
            assert end is not None
            return self.lines[since : end + 1]

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._draining is not None:
            self._draining.join(timeout=10)  # the log's end: the pipe closes with the process
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()

    def log_text(self) -> str:
        return "".join(self.lines)


def schemathesis_config(path: Path, operations: list[dict[str, Any]]) -> Path:
    """A schemathesis.toml: ``operations`` are (operation-id, expected positive statuses)."""
    out = []
    for op in operations:
        statuses = ", ".join(f'"{s}"' for s in op["statuses"])
        out.append(
            "[[operations]]\n"
            f'include-operation-id = "{op["operation_id"]}"\n'
            f"checks.positive_data_acceptance.expected-statuses = [{statuses}]\n"
        )
    path.write_text("\n".join(out))
    return path


def run_schemathesis(
    schema_url: str, headers: dict[str, str], config: Path, *extra: str, timeout: float = 540
) -> subprocess.CompletedProcess[str]:
    """``st run`` with every check, a fixed seed and a bounded number of examples."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        schema_url,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        *extra,
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=config.parent
    )
