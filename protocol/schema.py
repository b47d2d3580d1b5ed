"""``python -m edgeorder.protocol.schema OUT.json``: write the JSON Schema of every payload."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgeorder.protocol.models import json_schemas


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = json.dumps(json_schemas(), indent=2, sort_keys=True) + "\n"
    if args:
        Path(args[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
