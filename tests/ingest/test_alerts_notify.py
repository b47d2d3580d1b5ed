"""Alert notifications against real receivers: an aiosmtpd server and a webhook endpoint that
verifies the signature; queued in a real database, sent once, capped with a summary, retried
with a cap, counted."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.alerting.channels import DeliveryError, EmailChannel, WebhookChannel
from edgeorder.ingest.alerting.notifier import Notifier
from edgeorder.ingest.domain.alerts import AlertKind, Condition
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.store import alerts as store
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer
from tests.ingest.alert_receivers import SECRET, SmtpServer, WebhookReceiver
from tests.ingest.support import metric

NOW = p.utcnow()
ALERT = {
    "id": 7,
    "kind": "device_offline",
    "device_id": "kitchen-01",
    "state": "active",
    "since": "2026-12-01T10:00:00.000Z",
    "detail": "offline since 2026-12-01T10:00:00Z (limit 300 s)",
    "opened_at": "2026-12-01T10:05:00.000Z",
    "acknowledged_by": None,
    "acknowledged_at": None,
    "cleared_at": None,
    "updated_at": "2026-12-01T10:05:00.000Z",
}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = await WebhookReceiver().start()
    yield receiver
    await receiver.stop()


def email(server: SmtpServer, **kw: object) -> EmailChannel:
    values: dict[str, object] = {"sender": "edgeorder@example.test", "recipients": ["ops@ex.test"]}
    values.update(kw)
    return EmailChannel("127.0.0.1", server.port, timeout_s=5, **values)  # type: ignore[arg-type]


async def test_an_email_reaches_a_real_smtp_server(smtp: SmtpServer) -> None:
    await email(smtp, recipients=["ops@ex.test", "oncall@ex.test"]).send("opened", ALERT)
    [msg] = smtp.messages
    assert msg["Subject"] == "[edgeorder] opened: device_offline kitchen-01"
    assert msg["X-Edgeorder-Alert"] == "7 opened"
    text = msg.get_payload()
    assert "detail: offline since 2026-12-01T10:00:00Z" in text
    assert smtp.mailbox.envelopes == [("edgeorder@example.test", ["ops@ex.test", "oncall@ex.test"])]


async def test_smtp_login_and_a_refused_login_is_a_delivery_error() -> None:
    server = SmtpServer(user="mailer", password="s3cret").start()
    try:
        await email(server, user="mailer", password="s3cret").send("cleared", ALERT)
        assert server.logins == ["mailer"]
        assert len(server.messages) == 1
        with pytest.raises(DeliveryError):
            await email(server, user="mailer", password="wrong").send("cleared", ALERT)
        assert len(server.messages) == 1
    finally:
        server.stop()


async def test_starttls_then_login_then_a_summary(tmp_path: Path) -> None:
    from edgeorder.ingest.cli.tls import _pem_cert, _pem_key, issue_server_cert, load_or_create_ca

    ca_key, ca_cert, _ = load_or_create_ca(tmp_path, "test CA")
    key, cert = issue_server_cert(ca_key, ca_cert, ["127.0.0.1"], days=1)
    (tmp_path / "server.key").write_bytes(_pem_key(key))
    (tmp_path / "server.crt").write_bytes(_pem_cert(cert))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    client_tls = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    server = SmtpServer(user="mailer", password="s3cret", tls_context=server_tls).start()
    try:
        channel = email(
            server, starttls=True, user="mailer", password="s3cret", tls_context=client_tls
        )
        await channel.send_summary([("opened", ALERT), ("cleared", {**ALERT, "id": 8})])
        with pytest.raises(DeliveryError):  # no STARTTLS: the server refuses the mail
            await email(server).send("opened", ALERT)
    finally:
        server.stop()
    [msg] = server.messages
    assert server.logins == ["mailer"]
    assert msg["Subject"] == "[edgeorder] 2 alert changes (summary: too many to mail each)"
    assert "Alert 8 cleared" in msg.get_payload()


async def test_no_smtp_server_is_a_delivery_error() -> None:
    from tests.support.net import free_port

    with pytest.raises(DeliveryError):
        await EmailChannel(
            "127.0.0.1", free_port(), sender="a@b.test", recipients=["c@d.test"], timeout_s=2
        ).send("opened", ALERT)


async def test_the_webhook_is_signed_and_verifies(hook: WebhookReceiver) -> None:
    channel = WebhookChannel(hook.url, SECRET, timeout_s=5)
    try:
        await channel.send("opened", ALERT)
        await channel.send_summary([("opened", ALERT), ("cleared", ALERT)])
    finally:
        await channel.close()
    assert hook.refused == []
    single, summary = hook.bodies
    assert single["transition"] == "opened"
    assert single["alert"] == {k: v for k, v in ALERT.items() if k != "updated_at"}
    assert (summary["type"], summary["count"]) == ("summary", 2)
    forged = WebhookChannel(hook.url, "not-the-secret", timeout_s=5)
    try:
        with pytest.raises(DeliveryError, match="401"):
            await forged.send("opened", ALERT)
    finally:
        await forged.close()
    assert hook.refused == ["bad_signature"]


# --- the notifier over a real database ----------------------------------------------------------


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.db = Database.sqlite(tmp_path / "ingest.db")
        self.db.migrate()
        self.writer, self.reader = Writer(self.db), Reader(self.db)
        self.metrics = Metrics()

    def notifier(self, channels: list, **kw: object) -> Notifier:
        values: dict[str, Any] = {
            "owner": "w1",
            "attempts": 3,
            "retry_s": 5,
            "max_per_period": 20,
            "period_s": 3600,
            "lease_s": 60,
        }
        values.update(kw)
        return Notifier(
            channels, writer=self.writer, reader=self.reader, metrics=self.metrics, **values
        )

    async def open_alerts(self, n: int, channels: tuple[str, ...], *more: Condition) -> None:
        desired = {c.key: c for c in more}
        for i in range(n):
            c = Condition(AlertKind.DEVICE_OFFLINE, f"d-{i:02d}", NOW, f"offline {i}")
            desired[c.key] = c
        await self.writer.run(
            partial(store.apply, desired=desired, now=NOW, hold_s=0, channels=channels)
        )

    def count(self, channel: str, outcome: str) -> float | None:
        text = self.metrics.render().decode()
        name = f'edgeorder_alert_notifications_total{{channel="{channel}",outcome="{outcome}"}}'
        return metric(text, name)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(tmp_path)
    e.writer.start()
    yield e
    await e.writer.stop()
    e.reader.close()


async def test_each_transition_goes_once_to_both_channels(
    env: Env, smtp: SmtpServer, hook: WebhookReceiver
) -> None:
    notifier = env.notifier([WebhookChannel(hook.url, SECRET, timeout_s=5), email(smtp)])
    await env.open_alerts(2, ("webhook", "email"))
    assert await notifier.run_once(NOW) == 4
    assert await notifier.run_once(NOW) == 0  # nothing twice
    await notifier.close()
    assert sorted(str(d) for _, _, d in hook.transitions()) == ["d-00", "d-01"]
    assert sorted(m["Subject"] for m in smtp.messages) == [
        "[edgeorder] opened: device_offline d-00",
        "[edgeorder] opened: device_offline d-01",
    ]
    assert env.count("webhook", "sent") == 2
    assert env.count("email", "sent") == 2


async def test_past_the_cap_the_rest_go_as_one_summary_then_wait(
    env: Env, hook: WebhookReceiver
) -> None:
    notifier = env.notifier([WebhookChannel(hook.url, SECRET, timeout_s=5)], max_per_period=3)
    await env.open_alerts(6, ("webhook",))
    await notifier.run_once(NOW)
    kinds = [b["type"] for b in hook.bodies]
    assert kinds == ["alert", "alert", "summary"]  # 3 messages: 2 alerts, 1 summary of 4
    assert hook.bodies[2]["count"] == 4
    assert env.count("webhook", "summarised") == 4
    # the cap is reached: a new alert waits for room instead of going out
    deep = Condition(AlertKind.QUEUE_DEPTH, "d-00", NOW, "queue 500")
    await env.open_alerts(6, ("webhook",), deep)
    await notifier.run_once(NOW)
    assert len(hook.bodies) == 3
    assert env.count("webhook", "deferred") == 1
    await notifier.run_once(NOW + timedelta(minutes=9))
    assert env.count("webhook", "deferred") == 1  # not due: deferred for 10 minutes
    await notifier.run_once(NOW + timedelta(minutes=11))
    assert len(hook.bodies) == 3  # due, but the period still has its three messages
    assert env.count("webhook", "deferred") == 2
    await notifier.run_once(NOW + timedelta(hours=1, minutes=1))
    assert hook.transitions()[-1] == ("opened", "queue_depth", "d-00")
    await notifier.close()


async def test_failures_are_retried_with_a_cap_logged_and_counted(
    env: Env, hook: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    hook.status = 503
    notifier = env.notifier([WebhookChannel(hook.url, SECRET, timeout_s=5)], attempts=2)
    await env.open_alerts(1, ("webhook",))
    await notifier.run_once(NOW)
    assert (hook.calls, env.count("webhook", "failed")) == (1, 1)
    await notifier.run_once(NOW + timedelta(seconds=4))
    assert hook.calls == 1  # the retry is due after 5 s
    await notifier.run_once(NOW + timedelta(seconds=5))
    assert (hook.calls, env.count("webhook", "gave_up")) == (2, 1)
    await notifier.run_once(NOW + timedelta(hours=1))
    assert hook.calls == 2  # given up: never again
    row = await env.reader(
        lambda c: c.execute(
            "SELECT state, attempts, last_error FROM alert_notifications"
        ).fetchone()
    )
    assert (row[0], row[1]) == ("failed", 2)
    assert "503" in row[2]
    await notifier.close()


async def test_a_channel_no_longer_configured_gives_its_rows_up(env: Env) -> None:
    notifier = env.notifier([])
    await env.open_alerts(1, ("email",))
    assert await notifier.run_once(NOW) == 0  # no channel: nothing is even claimed
    other = env.notifier([WebhookChannel("http://127.0.0.1:9/x", SECRET, timeout_s=1)])
    assert await other.run_once(NOW) == 1
    assert env.count("email", "gave_up") == 1
    await other.close()
    body = json.dumps(ALERT)
    assert "kitchen-01" in body
