"""The README's short tour, against a running demo: the buttons it names exist on the
dashboard, every shell variable it uses is defined, and its commands (the press, reading the
order, shipping it) work as written, only on the test's own ports."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from tests.demo.test_demo_e2e import OBSERVER, Demo
from tests.support.net import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TOUR = README[README.index("## A short tour") : README.index("## The operator dashboard")]
BLOCKS = [
    textwrap.dedent(m.group(1))
    for m in re.finditer(r"<!-- tour -->\s*\n\s*```sh\n(.*?)\n\s*```", TOUR, re.S)
]


def button_labels_named() -> set[str]:
    """Bold words in the tour's sentences about buttons."""
    sentences = re.split(r"(?<=[.;:])\s", TOUR)
    return {
        bold
        for sentence in sentences
        if "button" in sentence
        for bold in re.findall(r"\*\*([^*]+)\*\*", sentence)
    }


def test_every_variable_the_tour_uses_is_defined() -> None:
    assert BLOCKS, "the tour has runnable blocks"
    defined: set[str] = set()
    for block in BLOCKS:
        for line in block.splitlines():
            used = set(re.findall(r"\$([A-Z_][A-Z0-9_]*)", line))
            assert used <= defined, f"{sorted(used - defined)} used before it is set: {line}"
            assigned = re.match(r"([A-Z_][A-Z0-9_]*)=", line)
            if assigned:
                defined.add(assigned.group(1))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Demo]:
    # Named as the README's ./edgeorder-data, so its commands run as written from tmp_path.
    demo = Demo(tmp_path / "edgeorder-data", free_port(), free_port(), free_port()).start()
    yield demo
    demo.close()


def on_our_ports(block: str, demo: Demo) -> str:
    block = block.replace("127.0.0.1:8081", f"127.0.0.1:{demo.core_port}")
    block = block.replace("127.0.0.1:8080", f"127.0.0.1:{demo.http_port}")
    return re.sub(r"(edgeorder demo press \S+)", rf"\1 --http-port {demo.http_port}", block)


def run_block(block: str, cwd: Path) -> list[str]:
    """The block in bash, one command's output per line (curl prints no trailing newline)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + "\n".join(f"{line}; echo" for line in block.splitlines())
    result = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def dashboard_buttons(demo: Demo, path: str) -> set[str]:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    base = f"http://127.0.0.1:{demo.http_port}"
    login = {"username": "admin", "password": demo.secrets()["admin_password"], "next": path}
    with opener.open(f"{base}/login", urllib.parse.urlencode(login).encode(), timeout=10) as r:
        html = r.read().decode()
    return {label.strip() for label in re.findall(r"<button[^>]*>([^<]+)</button>", html)}


def test_the_tour_works_as_written(running: Demo, tmp_path: Path) -> None:
    labels = dashboard_buttons(running, "/devices/demo-01")
    assert button_labels_named() <= labels, (button_labels_named(), labels)

    watcher = running.probe(OBSERVER)
    assert watcher.wait_connected()
    watcher.subscribe(p.device_topic("demo-01", p.Channel.STATUS))

    def states() -> set[str]:
        return {json.loads(m.payload)["state"] for m in watcher.messages}

    press, order = (on_our_ports(block, running) for block in BLOCKS)
    run_block(press, tmp_path)
    watcher.wait_for(lambda m: json.loads(m.payload)["state"] == "ordered", timeout=30)

    page, read, shipped = (json.loads(line) for line in run_block(order, tmp_path))
    assert [o["Id"] for o in page["Data"]] == [read["Id"]] == [1]
    assert read["Device"]["Id"] == "demo-01"
    assert shipped["Status"]["Label"].lower() == "shipped"
    watcher.wait_for(lambda m: json.loads(m.payload)["state"] == "shipped", timeout=30)
    assert {"accepted", "ordered", "shipped"} <= states()
