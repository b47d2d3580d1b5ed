"""Session fixtures of the deployment tests: the package built once (``python -m build``, as
the README's first production step), and a folder of wheels to install it from without an
index (hosts in network namespaces have no internet)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeorder-tests"


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The wheel and sdist of this checkout (no isolated build env: offline; the dev extra
    has build, setuptools and wheel)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dist(wheel, sdist)


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    deps = (
        project["project"]["dependencies"] + project["project"]["optional-dependencies"]["server"]
    )
    return sorted({*build, *deps, "wheel"})


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Wheels of every dependency of the base package, [server] and the build backend, for
    Python 3.11 on this machine, kept across runs (keyed by the requirement list); fetched
    from the machine's package index once. Skips with the reason if that is not possible."""
    requirements = _requirements()
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    house = CACHE / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            str(house),
            *requirements,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot fetch the dependencies' wheels: {result.stderr.strip()[-500:]}")
    (house / ".complete").write_text("\n".join(requirements) + "\n")
    return house
