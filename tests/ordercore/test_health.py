"""The order core's ``/healthz`` says what is wrong (issue 11 §4): a database that does not
commit, webhook deliveries piling up; ``/livez`` stays 200. Neither needs a token."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from edgeorder.ordercore import Settings
from edgeorder.ordercore import health as core_health
from edgeorder.ordercore.store.db import connect
from tests.ordercore.conftest import AUTH, StartCore, checkout


async def _health(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/healthz")
    return resp.status, await resp.json()


def _failing(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in body["checks"] if not c["ok"]}


async def test_all_well_needs_no_token(client: TestClient[Any, Any]) -> None:
    status, body = await _health(client)
    assert (status, body["status"], _failing(body)) == (200, "ok", {})
    assert [c["name"] for c in body["checks"]] == ["database", "webhooks"]
    resp = await client.get("/livez")
    assert (resp.status, await resp.json()) == (200, {"status": "alive"})


async def test_overdue_webhook_deliveries_degrade_it(
    start_core: StartCore, core_settings: Settings
) -> None:
    now = [time.time()]
    settings = core_settings.model_copy(
        update={
            "health_webhook_age_s": 60.0,
            "webhook_backoff_base_s": 3600.0,  # the subscriber is down: retried much later
            "webhook_backoff_max_s": 3600.0,
        }
    )
    client = await start_core(settings, clock=lambda: now[0])
    hook = {"Url": "http://127.0.0.1:9/down", "Events": ["*"], "Secret": "s"}
    assert (await client.post("/api/webhooks", json=hook, headers=AUTH)).status == 201
    await checkout(client)
    status, body = await _health(client)
    assert status == 200  # pending, but not for long
    now[0] += 61
    status, body = await _health(client)
    assert (status, body["status"]) == (503, "degraded")
    assert _failing(body) == {
        "webhooks": "1 delivery(ies) pending, the oldest for 61 s (limit 60 s)"
    }
    assert (await client.get("/livez")).status == 200


async def test_a_database_that_does_not_commit_degrades_it(
    client: TestClient[Any, Any], core_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_health, "HEALTH_TIMEOUT_S", 0.2)
    blocker = connect(core_settings.db_path)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        status, body = await _health(client)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (status, _failing(body)) == (503, {"database": "no commit within 0.2 s"})
