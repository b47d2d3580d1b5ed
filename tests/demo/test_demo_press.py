"""``edgeorder demo press`` against a running demo, and the demo's ``--help``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from tests.demo.test_demo_e2e import OBSERVER, Demo, get_json
from tests.support.mqtt import Received
from tests.support.net import free_port
from tests.support.proc import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Demo]:
    demo = Demo(tmp_path / "data", free_port(), free_port(), free_port()).start()
    yield demo
    demo.close()


def press(
    demo: Demo,
    device: str,
    click: str = "single",
    *,
    data_dir: Path | None = None,
    http_port: int | None = None,
) -> tuple[int, str]:
    result = run_cli(
        "demo",
        "press",
        device,
        click,
        "--data-dir",
        str(data_dir or demo.data_dir),
        "--http-port",
        str(http_port or demo.http_port),
    )
    return result.returncode, result.stdout + result.stderr


def pressed_event_id(output: str) -> str:
    """The event id ``demo press`` prints: 'pressed demo-01 (single): event 01J...'."""
    assert "event " in output, output
    return output.rsplit("event ", 1)[1].split()[0]


def status_of(event_id: str, state: str) -> Callable[[Received], bool]:
    def match(m: Received) -> bool:
        body = json.loads(m.payload)
        return bool(body.get("event_id") == event_id and body["state"] == state)

    return match


def test_a_cli_press_becomes_an_order_and_a_second_press_is_throttled(running: Demo) -> None:
    secrets = running.secrets()
    watcher = running.probe(OBSERVER)
    assert watcher.wait_connected()
    watcher.subscribe(p.device_topic("demo-01", p.Channel.STATUS))

    code, output = press(running, "demo-01", "single")
    assert code == 0, output
    first = pressed_event_id(output)
    ordered = watcher.wait_for(status_of(first, "ordered"), timeout=30)[0]
    order_id = json.loads(ordered.payload)["order_id"]
    order = get_json(
        f"http://127.0.0.1:{running.core_port}/api/order/received/{order_id}",
        secrets["ordercore_token"],
    )
    assert isinstance(order, dict)
    assert order["Device"]["Id"] == "demo-01"
    assert [i["Sku"] for i in order["OrderItems"]] == ["COFFEE-1KG"]
    assert order["Test"] is True  # demo devices run with env dev

    # The first order is still in flight (received, not delivered): the same press is throttled.
    code, output = press(running, "demo-01", "single")
    assert code == 0, output
    second = pressed_event_id(output)
    assert second != first
    watcher.wait_for(status_of(second, "throttled"), timeout=30)

    # A long press cancels the last order, and the event that made the order hears it.
    code, output = press(running, "demo-01", "long")
    assert code == 0, output
    watcher.wait_for(status_of(first, "cancelled"), timeout=30)
    watcher.close()
    cancelled = get_json(
        f"http://127.0.0.1:{running.core_port}/api/order/received/{order_id}",
        secrets["ordercore_token"],
    )
    assert isinstance(cancelled, dict)
    assert cancelled["CancelledOn"] is not None

    page = get_json(
        f"http://127.0.0.1:{running.core_port}/api/order/received?device=demo-01",
        secrets["ordercore_token"],
    )
    assert isinstance(page, dict)
    assert [o["Id"] for o in page["Data"]] == [order["Id"]]
    assert running.stop() == 0
    lines = "".join(running.output).splitlines()
    assert any(line.startswith("led demo-01 ") for line in lines)
    assert "led demo-01 throttled throttled" in lines


def test_press_says_what_is_wrong(running: Demo, tmp_path: Path) -> None:
    code, output = press(running, "demo-09")
    assert code == 1
    assert "unknown simulated device 'demo-09'" in output
    assert "demo-01" in output

    code, output = press(running, "demo-01", data_dir=tmp_path / "elsewhere")
    assert code == 1
    assert "secrets.json" in output
    assert "--data-dir" in output

    code, output = press(running, "demo-01", http_port=free_port())
    assert code == 1
    assert "is it running" in output

    # The route sits behind ingest's auth: no token, no press.
    url = f"http://127.0.0.1:{running.http_port}/api/demo/devices/demo-01/press"
    request = urllib.request.Request(
        url,
        data=b'{"click": "single"}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_demo_help_explains_every_option() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0
    for option in (
        "--data-dir",
        "--host",
        "--mqtt-port",
        "--http-port",
        "--ordercore-port",
        "--devices",
        "press",
        "EDGEORDER_ADMIN_PASSWORD",
        "EDGEORDER_ORDERCORE_TOKEN",
    ):
        assert option in result.stdout, option
    press_help = run_cli("demo", "press", "--help")
    assert press_help.returncode == 0
    assert "DEVICE" in press_help.stdout
    assert "{single,double,long}" in press_help.stdout
