"""The installed ``edgeorder`` script (what a user types), not ``python -m`` from the checkout:
every subcommand imports and explains itself from any working directory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgeorder.cli import COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_installed_script_runs_every_subcommands_help(command: str, tmp_path: Path) -> None:
    script = shutil.which("edgeorder")
    if script is None:
        pytest.skip("the edgeorder console script is not installed (pip install -e .)")
    result = subprocess.run(
        [script, command, "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert f"edgeorder {command}" in result.stdout
    assert "--help" in result.stdout
