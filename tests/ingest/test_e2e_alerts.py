"""Issue 15's "done when", end to end: real Mosquitto, the real order core, ingest in this loop
with its alert evaluator, a webhook receiver that verifies every signature and an aiosmtpd
server. An order-core outage, an offline device and a failing SKU each raise the right alert on
the API, the dashboard, the webhook and the e-mail within a minute, and clear when resolved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgeorder import protocol as p
from edgeorder.ingest.web import create_api_token
from tests.ingest.alert_receivers import SECRET, SmtpServer, WebhookReceiver
from tests.ingest.support import (
    Ingest,
    OrderCore,
    add_device,
    ingest_settings,
    metric,
    press,
    status_is,
    wait_for,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration

MINUTE = 60.0
ADMIN = "alerts-e2e-pass"


@dataclass
class Stack:
    ingest: Ingest
    hook: WebhookReceiver
    smtp: SmtpServer
    token: str

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, self.ingest.url + path, json=body) as resp,
        ):
            assert resp.status < 300, (resp.status, await resp.text())
            return await resp.json()

    async def dashboard(self) -> str:
        """The Fleet page, as a logged-in operator sees it."""
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            login = {"username": "admin", "password": ADMIN, "next": "/"}
            async with browser.post(self.ingest.url + "/login", data=login) as resp:
                assert resp.status == 200
                return await resp.text()

    def mails(self, transition: str, kind: str, device: str | None) -> list[str]:
        subject = f"[edgeorder] {transition}: {kind}" + (f" {device}" if device else "")
        return [str(m["Subject"]) for m in self.smtp.messages if m["Subject"] == subject]


async def eventually(check: Callable[[], Awaitable[Any]], within_s: float = MINUTE) -> float:
    """Poll ``check`` until it returns a truthy value; the seconds it took (fails after
    ``within_s``)."""
    start = time.monotonic()
    deadline = start + within_s
    while True:
        if await check():
            return time.monotonic() - start
        assert time.monotonic() < deadline, f"not within {within_s} s"
        await asyncio.sleep(0.05)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def stack(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore, smtp: SmtpServer
) -> AsyncIterator[Stack]:
    hook = await WebhookReceiver().start()
    settings = ingest_settings(
        ingest_dir,
        mosquitto.url,
        ordercore.url,
        admin_password=ADMIN,
        alert_interval_s=0.25,
        alert_offline_s=1,
        alert_buffer_age_s=3600,
        alert_failure_count=2,
        alert_failure_ratio=0.5,
        alert_config_grace_s=3600,
        alert_clear_hold_s=0,
        alert_webhook_url=hook.url,
        alert_webhook_secret=SECRET,
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=smtp.port,
        alert_smtp_from="edgeorder@example.test",
        alert_smtp_to="ops@example.test",
        alert_notify_retry_s=0.2,
    )
    running = await Ingest(settings).start()
    store = running.service
    token = await store.writer.run(lambda conn: create_api_token(conn, "alerts-e2e"))
    try:
        yield Stack(running, hook, smtp, token)
    finally:
        await running.stop()
        await hook.stop()


async def alert_of(stack: Stack, kind: str, device: str | None, state: str) -> dict | None:
    for alert in await stack.api("GET", f"/api/alerts?state={state}"):
        if alert["kind"] == kind and alert["device_id"] == device:
            return alert
    return None


async def raised_everywhere(stack: Stack, kind: str, device: str | None) -> dict:
    """The alert is active on the API, in the banner, on the webhook and in a mail."""
    took = await eventually(lambda: alert_of(stack, kind, device, "active"))
    alert = await alert_of(stack, kind, device, "active")
    assert alert is not None
    assert set(alert) >= {"id", "kind", "device_id", "state", "since", "detail"}
    page = await stack.dashboard()
    assert 'id="alert-banner"' in page
    assert kind in page.split('id="alert-banner"')[1].split("</div>")[0]

    async def notified() -> bool:
        return ("opened", kind, device) in stack.hook.transitions() and bool(
            stack.mails("opened", kind, device)
        )

    took += await eventually(notified)
    _, text = await stack.ingest.get("/metrics")
    assert metric(text, f'edgeorder_alerts_active{{kind="{kind}"}}') == 1
    print(f"\n{kind}: API, webhook and e-mail {took:.2f} s after the fault was observable")
    assert stack.hook.refused == []
    return alert


async def cleared_everywhere(stack: Stack, alert: dict) -> None:
    kind, device = alert["kind"], alert["device_id"]

    async def cleared() -> bool:
        done = await alert_of(stack, kind, device, "cleared")
        return (
            done is not None
            and done["id"] == alert["id"]
            and ("cleared", kind, device) in stack.hook.transitions()
            and bool(stack.mails("cleared", kind, device))
        )

    await eventually(cleared)
    assert await alert_of(stack, kind, device, "active") is None
    _, text = await stack.ingest.get("/metrics")
    assert metric(text, f'edgeorder_alerts_active{{kind="{kind}"}}') == 0
    sent = 'edgeorder_alert_notifications_total{channel="email",outcome="sent"}'
    assert (metric(text, sent) or 0) >= 2
    assert len(stack.mails("opened", kind, device)) == 1  # one message per transition


async def test_an_order_core_outage_raises_platform_unreachable_then_clears(
    stack: Stack, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "out-01", allow_parallel=True)
    await stack.ingest.service.devices.reload()
    await ordercore.stop()
    event = press("out-01")
    probe.publish(p.device_topic("out-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("out-01", event.event_id, "queued"))
    alert = await raised_everywhere(stack, "platform_unreachable", None)
    assert alert["device_id"] is None

    await ordercore.start()
    await wait_for(probe, status_is("out-01", event.event_id, "ordered"), within_s=MINUTE)
    await cleared_everywhere(stack, alert)


async def test_an_offline_device_raises_device_offline_with_since_then_clears(
    stack: Stack, ingest_dir: Path, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "shelf-01")
    await stack.ingest.service.devices.reload()
    topic = p.device_topic("shelf-01", p.Channel.PRESENCE)

    def presence(online: bool) -> None:
        body = p.encode(p.Presence(online=online, fw="0.1.0", ts=p.utcnow()))
        probe.client.publish(topic, body, qos=1, retain=True).wait_for_publish(10)

    presence(True)
    presence(False)
    alert = await raised_everywhere(stack, "device_offline", "shelf-01")
    assert alert["detail"].startswith("offline since ")
    ack = await stack.api("POST", f"/api/alerts/{alert['id']}/acknowledge")
    assert (ack["state"], ack["acknowledged_by"]) == ("acknowledged", "token:alerts-e2e")

    async def ack_sent() -> bool:
        return ("acknowledged", "device_offline", "shelf-01") in stack.hook.transitions()

    await eventually(ack_sent)

    presence(True)
    await cleared_everywhere(stack, alert)


async def test_a_failing_sku_raises_orders_failing_then_clears_once_orders_succeed(
    stack: Stack, ingest_dir: Path, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "odd-01", sku="NO-SUCH-SKU", allow_parallel=True)
    await stack.ingest.service.devices.reload()
    topic = p.device_topic("odd-01", p.Channel.EVENTS)
    for seq in (1, 2):
        event = press("odd-01", seq=seq)
        probe.publish(topic, p.encode(event))
        await wait_for(probe, status_is("odd-01", event.event_id, "failed"))
    alert = await raised_everywhere(stack, "orders_failing", "odd-01")
    assert "unknown SKU 'NO-SUCH-SKU'" in alert["detail"]  # the platform's reason

    mapping = {"single": {"type": "reorder", "sku": "COFFEE-1KG", "quantity": 1}}
    await stack.api("PATCH", "/api/devices/odd-01", {"mapping": mapping})
    for seq in (3, 4, 5):  # 2 failures of 5 events: below the ratio of 0.5
        event = press("odd-01", seq=seq)
        probe.publish(topic, p.encode(event))
        await wait_for(probe, status_is("odd-01", event.event_id, "ordered"))
    await cleared_everywhere(stack, alert)
