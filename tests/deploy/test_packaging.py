"""``python -m build`` makes a wheel and an sdist that install into fresh virtual
environments (no index: the dependencies come from a local folder of wheels), put nothing but
``edgeorder`` in site-packages, and run: the wheel alone is the agent (no backend dependency),
the sdist with ``[server]`` is the backend."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import Dist

pytestmark = pytest.mark.integration

BACKEND_ONLY = (
    "aiohttp",
    "sqlite_utils",
    "argon2",
    "amqtt",
    "cryptography",
    "prometheus_client",
    "pydantic",
    "pydantic_core",
)


@dataclass
class Venv:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def site_packages(self) -> Path:
        (found,) = self.root.glob("lib/python3.*/site-packages")
        return found

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"}
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]], capture_output=True, text=True, env=env
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def install(self, target: str, wheelhouse: Path) -> None:
        self.run("pip", "install", "--quiet", "--no-index", "--find-links", str(wheelhouse), target)

    def records(self) -> list[str]:
        """Every path edgeorder's installation wrote (its dist-info RECORD)."""
        (record,) = self.site_packages.glob("edgeorder-*.dist-info/RECORD")
        return [line.split(",", 1)[0] for line in record.read_text().splitlines() if line]


def fresh_venv(path: Path) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return Venv(path)


@pytest.fixture(scope="module")
def agent_venv(dist: Dist, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv with the wheel alone: what a Pi gets."""
    venv = fresh_venv(tmp_path_factory.mktemp("venv") / "agent")
    venv.install(str(dist.wheel), wheelhouse)
    return venv


def only_edgeorder(venv: Venv) -> None:
    """site-packages gets the edgeorder package, its metadata and the console script only."""
    tops = {path.split("/", 1)[0] for path in venv.records()}
    assert {t for t in tops if not t.startswith("..")} == {
        "edgeorder",
        next(t for t in tops if t.startswith("edgeorder-") and t.endswith(".dist-info")),
    }, tops
    assert not {"agent", "ingest", "protocol", "ordercore", "bench"} & {
        p.name for p in venv.site_packages.iterdir()
    }


def test_the_wheel_is_an_agent_only_install(agent_venv: Venv) -> None:
    venv = agent_venv
    only_edgeorder(venv)
    assert "usage: edgeorder" in venv.run("edgeorder", "--help").stdout
    assert "--config" in venv.run("edgeorder", "agent", "--help").stdout
    installed = {p.name.split("-")[0].lower() for p in venv.site_packages.glob("*.dist-info")}
    assert not {name.replace("_", "-") for name in BACKEND_ONLY} & installed
    assert not {"aiohttp", "sqlite_utils", "amqtt", "cryptography", "argon2_cffi"} & installed
    assert not {"pydantic", "pydantic_core", "python_ulid"} & installed
    backend = venv.run("edgeorder", "ingest", "--help", check=False)
    assert backend.returncode == 2
    assert "pip install 'edgeorder[server]'" in backend.stderr


def test_the_sdist_installs_the_backend(dist: Dist, wheelhouse: Path, tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path / "server")
    venv.install(f"{dist.sdist}[server]", wheelhouse)  # built from source, offline
    only_edgeorder(venv)
    for command in ("ingest", "ordercore", "device", "broker-auth", "tls", "agent"):
        assert venv.run("edgeorder", command, "--help").returncode == 0
    # The package data the backend serves and seeds from came along.
    files = set(venv.records())
    assert "edgeorder/ingest/web/static/app.css" in files
    assert "edgeorder/ordercore/catalog_seed.json" in files


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def test_report_the_agent_install_size_and_rss(
    agent_venv: Venv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Figures for the closing note (printed, never asserted): the agent-only install's size
    on disk and the agent's resident memory once it runs (simulated pins, broker offline)."""
    venv = agent_venv
    tooling = ("pip", "setuptools", "pkg_resources", "_distutils_hack")  # the venv's own
    size = du(venv.site_packages) - sum(
        du(p) for p in venv.site_packages.iterdir() if p.name.split("-")[0] in tooling
    )
    config = tmp_path / "agent.toml"
    config.write_text(
        'device_id = "rss-01"\n[mqtt]\nurl = "mqtt://127.0.0.1:9"\nusername = "rss-01"\n'
        f'password = "x"\n[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
    )
    proc = subprocess.Popen(
        [str(venv.bin / "edgeorder"), "agent", "--config", str(config), "--simulate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": f"{venv.bin}:/usr/bin:/bin", "EDGEORDER_LOG_FORMAT": "json"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # its first LED state: the agent is fully up
            if line.startswith("led "):
                break
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        rss_kib = int(rss_line.split()[1])
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    with capsys.disabled():
        print(
            f"\nagent-only install: {size / 1e6:.1f} MB in site-packages (without pip); "
            f"agent RSS: {rss_kib / 1024:.1f} MiB (Python {sys.version.split()[0]}, "
            f"{os.uname().machine})"
        )
    assert size > 0
    assert rss_kib > 0
