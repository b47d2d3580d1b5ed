"""``python -m edgeorder.agent.config_schema [OUT]``: the JSON Schema of firmware-config TOML files.

The committed copy lives in ``firmware-config/schema.json``; a test keeps it in step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgeorder.agent.config_model import AgentConfig

__all__ = ["SCHEMA_PATH", "config_schema", "schema_text"]

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "firmware-config" / "schema.json"


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``AgentConfig`` as the TOML spells it."""
    schema = AgentConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edgeorder device firmware-config"
    return schema


def schema_text() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        Path(args[0]).write_text(schema_text())
    else:
        sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
