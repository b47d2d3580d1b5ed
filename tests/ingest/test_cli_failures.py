"""The registry tools fail the way a user can act on: one line on stderr and exit 1 for a
database that is not there or cannot be reached, never a traceback; a read-only command
never creates an empty registry where a typo in --data-dir pointed."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.support import add_device
from tests.support.net import free_port
from tests.support.proc import run_cli


def test_list_and_show_do_not_create_a_database_where_none_is(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for args in (("device", "list"), ("device", "show", "x-01"), ("evendi", "list")):
        result = run_cli(args[0], "--data-dir", str(typo), *args[1:])
        assert result.returncode == 1, result
        assert f"no ingest database at {typo / 'ingest.db'}" in result.stderr
        assert "Traceback" not in result.stderr
    assert not typo.exists()


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/x"
    result = run_cli("device", "--db-url", url, "list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "edgeorder device: error: OperationalError: " in result.stderr
    debug = run_cli("--log-level", "debug", "device", "--db-url", url, "list")
    assert "Traceback" in debug.stderr  # asked for


def test_a_number_past_int64_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    add_device(tmp_path, "k-01")
    result = run_cli("evendi", "--data-dir", str(tmp_path), "show", "9" * 25)
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr


def test_an_unknown_log_level_is_refused() -> None:
    result = run_cli("--log-level", "bogus", "device", "list")
    assert result.returncode == 2
    assert "invalid choice: 'bogus'" in result.stderr
