"""The production steps as the READMEs write them: fenced blocks tagged
``<!-- multihost: ID -->``, read by id so the multi-host test runs each one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "README.md", ROOT / "deploy" / "pi" / "README.md")
_BLOCK = re.compile(r"<!-- multihost: (?P<id>[\w/-]+) -->\s*\n```sh\n(?P<body>.*?)```", re.S)


def blocks() -> dict[str, str]:
    """Every tagged block of the READMEs, by id (ids are unique)."""
    found: dict[str, str] = {}
    for source in SOURCES:
        for match in _BLOCK.finditer(source.read_text()):
            block_id = match.group("id")
            assert block_id not in found, f"{source}: block {block_id} twice"
            found[block_id] = match.group("body")
    return found


class Steps:
    """The README's blocks, remembering which ones a test ran (all must be)."""

    def __init__(self) -> None:
        self.all = blocks()
        self.used: set[str] = set()

    def __getitem__(self, block_id: str) -> str:
        self.used.add(block_id)
        return self.all[block_id]

    def unused(self) -> set[str]:
        return set(self.all) - self.used
