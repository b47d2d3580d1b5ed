"""``edgeorder ordercore`` as a real process: help, settings errors, serve, SIGTERM."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

from tests.support.net import free_port
from tests.support.proc import run_cli, spawn_cli


def test_help_lists_every_option() -> None:
    result = run_cli("ordercore", "--help")
    assert result.returncode == 0, result.stderr
    for text in (
        "--host",
        "--port",
        "--data-dir",
        "--token",
        "--tokens-file",
        "role=merchant:merchant=",
        "role=customer:user=",
        "role=app",
        "EnvironmentFile",
        "--seed-catalog",
        "EDGEORDER_ORDERCORE_PORT",
        "EDGEORDER_ORDERCORE_DATA_DIR",
        "EDGEORDER_ORDERCORE_TOKEN",
        "EDGEORDER_ORDERCORE_TOKENS_FILE",
    ):
        assert text in result.stdout, text


def test_missing_token_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("ordercore", "--data-dir", str(tmp_path), EDGEORDER_ORDERCORE_TOKEN="")
    assert result.returncode == 2
    assert "tokens" in result.stderr
    assert "EDGEORDER_ORDERCORE_TOKEN" in result.stderr


def test_a_bad_token_spec_is_a_clear_error_without_the_secret(tmp_path: Path) -> None:
    result = run_cli(
        "ordercore", "--data-dir", str(tmp_path), "--token", "shop=hunter2:role=merchant"
    )
    assert result.returncode == 2
    assert "needs :merchant=<id>" in result.stderr
    assert "hunter2" not in result.stderr
    tokens = tmp_path / "tokens"
    tokens.write_text("ok=s:role=admin\nana=hunter3:role=customer\n")
    result = run_cli("ordercore", "--data-dir", str(tmp_path), "--tokens-file", str(tokens))
    assert result.returncode == 2
    assert f"{tokens}:2" in result.stderr
    assert "hunter3" not in result.stderr


def test_serves_from_env_settings_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn_cli(
        "ordercore",
        "--seed-catalog",
        EDGEORDER_ORDERCORE_PORT=str(port),
        EDGEORDER_ORDERCORE_DATA_DIR=str(tmp_path / "oc"),
        EDGEORDER_ORDERCORE_TOKEN="tok-a, shop=tok-b:role=merchant:merchant=m-1",
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # blocks until the service says it listens
            lines.append(line)
            if "ordercore_listening" in line:
                break
        else:
            raise AssertionError("".join(lines))
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/sku", headers={"Authorization": "Bearer tok-b"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["Total"] == 4
        assert any("shop (merchant:m-1)" in line for line in lines)  # who, never the secret
        assert not any("tok-b" in line for line in lines)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "ordercore_stopped" in rest
        assert (tmp_path / "oc" / "ordercore.sqlite3").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_seed_file_stops_start_up_with_its_name(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"Skus": [{"Sku": "X", "Price": "free"}]}')
    result = run_cli(
        "ordercore", "--data-dir", str(tmp_path / "oc"), "--token", "t", "--seed-catalog", str(seed)
    )
    assert result.returncode == 1
    assert str(seed) in result.stderr
    assert "Price" in result.stderr
