"""What the agent loads on a Pi: never pydantic (bench/README.md, "Agent on a Pi budget")."""

from __future__ import annotations

import subprocess
import sys

from tests.support.proc import cli_env

PROBE = """
import sys
from pathlib import Path
from edgeorder import cli
from edgeorder.agent import cli as agent_cli
from edgeorder.agent.config import parse_config
from edgeorder.protocol import device
data = {"device_id": "d", "mqtt": {"url": "mqtts://h"}}
config = parse_config(data, source="t", base_dir=Path("."))
device.decode_status(b'{"event_id":null,"state":"rejected","ts":"2026-11-22T13:00:00Z"}')
print(" ".join(sorted(sys.modules)))
"""


def test_the_agent_runs_without_pydantic() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=cli_env(), capture_output=True, text=True, check=True
    )
    loaded = set(out.stdout.split())
    assert "edgeorder.agent.runtime" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("pydantic", "pydantic_core")}
    assert "edgeorder.protocol.models" not in loaded
