"""The README's production steps, run verbatim on a server and three Raspberry Pis made of
Linux network namespaces (a bridged 192.0.2.0/24, as the README's addresses), with TLS from the
project's CA between them.

The server gets Debian's stock ``mosquitto.conf`` (as the package leaves it) and runs
Mosquitto as user ``mosquitto``, the order core and ingest as their units start them; each Pi
installs the built wheel (agent only) and runs the agent's unit. One device is provisioned
with the CLI, one on the dashboard, one added later; then one is rotated and one disabled,
``broker-auth --reload`` runs, and the right devices keep ordering while the others are
refused. What the test provides itself: the Debian packages (already on the machine),
``python -m build`` (run once per session), ``scp`` (files copied between the hosts' file
systems), and systemd (``tests/deploy/systemd.py``). Dependencies install from a local
folder of wheels: the namespaces have no internet.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import Dist
from tests.deploy.hosts import Host, Lan, namespaces_unavailable
from tests.deploy.readme import Steps
from tests.deploy.support import STOCK_CONF, shared_tmpdir
from tests.deploy.systemd import Service, Systemd
from tests.support.mosquitto import mosquitto_binary

pytestmark = [
    pytest.mark.multihost,
    pytest.mark.integration,
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed"),
    pytest.mark.timeout(600),
]

ROOT = Path(__file__).resolve().parents[2]
SERVER = "192.0.2.10"
README_DEVICE = "kitchen-01"
"""The device the README's blocks name; the test runs them for other devices too."""


class Site:
    """The LAN, its hosts, their systemd, and the README's steps run on them."""

    def __init__(self, lan: Lan, workdir: Path, dist: Dist, wheelhouse: Path) -> None:
        self.lan, self.dist, self.steps = lan, dist, Steps()
        self.server = lan.add("server", 10)
        self.pis = {f"kitchen-0{n}": lan.add(f"kitchen-0{n}", 20 + n) for n in (1, 2, 3)}
        # No GPIO chip on the test machine: the agent's unit runs as written plus --simulate
        # (gpiozero's MockFactory; presses on its stdin, LED changes on its stdout).
        self.systemd = Systemd(
            workdir, lan.hosts, append={"edgeorder-agent.service": ["--simulate"]}
        )
        offline = {
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        self.env = {
            name: {**self.systemd.install_client(h), **offline} for name, h in lan.hosts.items()
        }

    def run(self, host: Host, block_id: str, device: str = README_DEVICE) -> str:
        script = self.steps[block_id].replace(README_DEVICE, device)
        return host.shell(script, env=self.env[host.name]).stdout

    # -- what the test stands in for ---------------------------------------------------------

    def provide_packages(self) -> None:
        """What ``apt-get install`` leaves on a fresh Debian / Raspberry Pi OS: the tools are
        on this machine already; the server gets the package's stock mosquitto.conf."""
        self.steps["provided/server"], self.steps["provided/pi"]
        self.server.write("/etc/mosquitto/mosquitto.conf", STOCK_CONF.read_bytes())
        self.server.path("/etc/mosquitto/conf.d").mkdir(parents=True, exist_ok=True)
        for pi in self.pis.values():  # Raspberry Pi OS has both groups
            pi.shell("groupadd --system gpio && groupadd --system spi")

    def copy(
        self, block_id: str, device: str = README_DEVICE, *, workstation_only: bool = False
    ) -> None:
        """``scp`` as the block writes it: a workstation path is this checkout (``dist/`` is
        the built package), ``root@ADDRESS:`` or ``root@DEVICE.local:`` a host's root home."""
        for line in self.steps[block_id].replace(README_DEVICE, device).strip().splitlines():
            *sources, target = [a for a in shlex.split(line)[1:] if not a.startswith("-")]
            to_host, to_dir = self._remote(target)
            for source in sources:
                if ":" in source:
                    if workstation_only:
                        continue
                    from_host, path = self._remote(source)
                    origin = from_host.path(path)
                else:
                    origin = self._workstation(source)
                destination = to_host.path(f"{to_dir}/{origin.name}")
                if origin.is_dir():
                    shutil.copytree(origin, destination, dirs_exist_ok=True)
                else:
                    shutil.copyfile(origin, destination)

    def _remote(self, spec: str) -> tuple[Host, str]:
        user_host, _, path = spec.partition(":")
        name = user_host.split("@")[-1]
        host = next(h for h in self.lan.hosts.values() if name in (h.address, f"{h.name}.local"))
        return host, path or "/root"

    def _workstation(self, path: str) -> Path:
        if path.startswith("dist/"):
            self.steps["build"]
            built = self.dist.wheel.parent / Path(path).name
            assert built.exists(), (
                f"the README names {path}; python -m build made {self.dist.wheel.name}"
            )
            return built
        return ROOT / path

    # -- the steps ----------------------------------------------------------------------------

    def install_pi(self, device: str, *, from_dashboard: dict[str, str] | None = None) -> Service:
        pi = self.pis[device]
        self.copy("copy/pi", device, workstation_only=from_dashboard is not None)
        for name, content in (from_dashboard or {}).items():  # the browser's downloads
            pi.write(f"/root/{name}", content.encode(), mode=0o600)
        self.run(pi, "pi/install", device)
        self.run(pi, "pi/configure", device)
        self.run(pi, "pi/service", device)
        return self.agent(device)

    def agent(self, device: str) -> Service:
        return self.systemd.service(device, "edgeorder-agent")

    def dashboard_provision(self, device: str) -> dict[str, str]:
        """An operator adds ``device`` on the dashboard from a browser on that Pi's LAN."""
        env_file = self.server.path("/etc/edgeorder/ingest.env").read_text()
        password = next(
            line.split("=", 1)[1]
            for line in env_file.splitlines()
            if line.startswith("EDGEORDER_ADMIN_PASSWORD=")
        )
        argv = [
            sys.executable,
            "-m",
            "tests.deploy.dashboard_client",
            f"http://{SERVER}:8080",
            password,
            device,
            "COFFEE-1KG",
        ]
        result = subprocess.run(
            self.pis[device].command(argv, cwd=ROOT), capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert "does not know about 1 registry change" in body["provision_page"]
        assert f"mqtts://{SERVER}:8883" in body["provision_page"]
        return {"agent.toml": body["firmware_config"], "ca.crt": body["ca_certificate"]}

    def ordercore(self, method: str, path: str) -> dict[str, object]:
        """The order core's REST API, from the server, with the admin token the README made
        (``ops=SECRET:role=admin,...`` in ordercore.env)."""
        script = (
            ". /etc/edgeorder/ordercore.env && T=${EDGEORDER_ORDERCORE_TOKEN#ops=} && "
            f"curl -fsS -X {method} -H "
            '"Authorization: Bearer ${T%%:role=*}" '
            f"'http://127.0.0.1:8081/api/{path}'"
        )
        body: dict[str, object] = json.loads(self.server.shell(script).stdout)
        return body

    def orders_of(self, device: str) -> list[dict[str, object]]:
        orders = self.ordercore("GET", f"order/received?device={device}")["Data"]
        assert isinstance(orders, list)
        return orders

    def deliver(self, device: str) -> None:
        """Ship and complete the device's orders; the webhook brings 'delivered' to its LED
        (until then a new press is throttled: an order for that product is in flight)."""
        for order in self.orders_of(device):
            self.ordercore("POST", f"order/{order['Id']}/ship")
            self.ordercore("POST", f"order/{order['Id']}/complete")
        self.agent(device).wait_for(lambda line: '"state": "delivered"' in line)


def connected(line: str) -> bool:
    return '"event": "agent.connected"' in line


def refused(line: str) -> bool:
    return '"event": "agent.connect_refused"' in line


def press_and_see_the_order(site: Site, device: str) -> None:
    agent = site.agent(device)
    before = agent.count(lambda line: line == "led ordered ordered")
    agent.wait_for(connected)
    agent.send("press\n")
    agent.wait_for(lambda line: line == "led press_ack pressed")
    with agent.cond:  # the LED says "ordered" once more than before the press
        ok = agent.cond.wait_for(
            lambda: sum(1 for line in agent.lines if line == "led ordered ordered") > before, 60
        )
    assert ok, f"{device}: no 'ordered' LED:\n" + "\n".join(agent.lines[-30:])


@pytest.fixture
def lan() -> Iterator[tuple[Lan, Path]]:
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(f"cannot make test hosts here: {reason}")
    workdir = shared_tmpdir("edgeorder-lan-")
    network = Lan("192.0.2", workdir)
    try:
        yield network, workdir
    finally:
        network.close()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


@pytest.fixture
def site(lan: tuple[Lan, Path], dist: Dist, wheelhouse: Path) -> Iterator[Site]:
    network, workdir = lan
    running = Site(network, workdir, dist, wheelhouse)
    try:
        yield running
    finally:
        running.systemd.close()
        for (host, name), service in running.systemd.services.items():  # shown on failure
            print(f"--- {host} {name} (exit {service.proc.returncode})")
            print("\n".join(service.lines[-40:]))


def test_the_readme_production_steps_work_across_hosts(site: Site) -> None:
    server = site.server
    site.provide_packages()
    site.copy("copy/server")
    site.run(server, "server/install")
    site.run(server, "server/broker")
    mosquitto = site.systemd.service("server", "mosquitto")
    site.run(server, "server/services")
    site.systemd.service("server", "edgeorder-ingest").wait_for(
        lambda line: "mqtt.subscribed" in line
    )

    # kitchen-01 from the CLI, kitchen-02 from the dashboard; each press is an order.
    site.run(server, "server/device", "kitchen-01")
    site.install_pi("kitchen-01")
    downloads = site.dashboard_provision("kitchen-02")
    site.run(server, "server/reload")
    site.install_pi("kitchen-02", from_dashboard=downloads)
    for device in ("kitchen-01", "kitchen-02"):
        press_and_see_the_order(site, device)
        assert len(site.orders_of(device)) == 1
    site.deliver("kitchen-01")  # the order core's webhook reaches ingest inside the sandbox

    # Add kitchen-03, rotate kitchen-01, disable kitchen-02, tell the broker.
    site.run(server, "server/device", "kitchen-03")
    site.run(server, "server/rotate", "kitchen-01")
    site.run(server, "server/disable", "kitchen-02")
    site.run(server, "server/reload")
    site.agent("kitchen-02").wait_for(refused)  # disconnected at the reload, then refused
    site.agent("kitchen-01").wait_for(refused)  # its old password is gone
    site.install_pi("kitchen-03")
    press_and_see_the_order(site, "kitchen-03")
    site.copy("copy/pi", "kitchen-01")  # the new config (and the same package and unit)
    site.run(site.pis["kitchen-01"], "pi/update", "kitchen-01")
    press_and_see_the_order(site, "kitchen-01")
    assert len(site.orders_of("kitchen-01")) == 2
    assert mosquitto.proc.poll() is None

    assert site.steps.unused() == set(), "README steps the test did not run"
    log = server.path("/var/log/mosquitto/mosquitto.log").read_text()
    assert "Error" not in log, log
