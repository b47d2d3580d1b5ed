"""Read the project's systemd units as systemd reads them (the parts the tests need): sections
of ``Key=Value`` lines, backslash continuations, repeated keys, an empty value resetting a
list, ``Environment=`` quoting and ``EnvironmentFile=`` files."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS_DIR = ROOT / "deploy" / "systemd"
UNITS = ("edgeorder-ingest.service", "edgeorder-ordercore.service", "edgeorder-agent.service")


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped[0] in "#;"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines


@dataclass
class Unit:
    name: str
    sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def values(self, key: str, section: str = "Service") -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def one(self, key: str, default: str | None = None, section: str = "Service") -> str | None:
        found = self.values(key, section)
        return found[-1] if found else default

    def words(self, key: str) -> list[str]:
        """A list setting (SupplementaryGroups=, StateDirectory=, ...), all lines joined."""
        return [word for value in self.values(key) for word in value.split()]

    @property
    def exec_start(self) -> list[str]:
        value = self.one("ExecStart")
        assert value, f"{self.name}: no ExecStart="
        return shlex.split(value.lstrip("@-:+!"))

    @property
    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for value in self.values("Environment"):
            for assignment in shlex.split(value):
                key, _, val = assignment.partition("=")
                env[key] = val
        return env

    @property
    def environment_files(self) -> list[tuple[Path, bool]]:
        """(path, required): a leading '-' makes a missing file fine."""
        return [
            (Path(v.lstrip("-")), not v.startswith("-")) for v in self.values("EnvironmentFile")
        ]

    def writable_dirs(self) -> list[Path]:
        """What ProtectSystem=strict leaves writable: the unit's own directories and
        ReadWritePaths=."""
        dirs = [Path("/var/lib") / d for d in self.words("StateDirectory")]
        dirs += [Path("/run") / d for d in self.words("RuntimeDirectory")]
        dirs += [Path("/var/cache") / d for d in self.words("CacheDirectory")]
        dirs += [Path("/var/log") / d for d in self.words("LogsDirectory")]
        dirs += [Path(p.lstrip("-")) for p in self.words("ReadWritePaths")]
        return dirs


def parse_unit(text: str, name: str = "unit") -> Unit:
    unit = Unit(name)
    section: dict[str, list[str]] = {}
    for line in _logical_lines(text):
        if line.startswith("[") and line.endswith("]"):
            section = unit.sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{name}: not Key=Value: {line!r}"
        key, value = key.strip(), value.strip()
        if value:
            section.setdefault(key, []).append(value)
        else:
            section[key] = []  # an empty assignment resets the list
    return unit


def load_unit(path: Path) -> Unit:
    return parse_unit(path.read_text(), path.name)


def read_environment_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile= format: KEY=VALUE lines, # comments, optional quotes."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        words = shlex.split(value) if value else [""]
        env[key.strip()] = " ".join(words)
    return env
