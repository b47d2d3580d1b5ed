"""Run ``edgeorder`` subcommands as real subprocesses of this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    """Environment in which ``python -m edgeorder`` runs this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("EDGEORDER_LOG_FORMAT", "json")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeorder", *args]


def run_cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``edgeorder ARGS`` to completion and capture its output."""
    return subprocess.run(
        cli_command(*args),
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def spawn_cli(*args: str, **env: str) -> subprocess.Popen[str]:
    """Start ``edgeorder ARGS`` in the background (stdin/stdout pipes, stderr merged)."""
    return subprocess.Popen(
        cli_command(*args),
        env=cli_env(**env),
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
