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


def test_a_backend_command_without_the_server_extra_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins
    import sys

    from edgeorder import cli

    real_import = builtins.__import__

    def no_aiohttp(name: str, *args: object, **kwargs: object) -> object:
        if name == "aiohttp" or name.startswith("aiohttp."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    for module in [m for m in sys.modules if m.startswith(("aiohttp", "edgeorder.ordercore"))]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)  # global: keep it
    monkeypatch.setattr(builtins, "__import__", no_aiohttp)
    assert cli.main(["ordercore", "--help"]) == 2
    err = capsys.readouterr().err
    assert "edgeorder[server]" in err
    assert "aiohttp" in err
