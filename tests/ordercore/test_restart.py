"""A new app on the same data dir keeps every order, its history and every idempotency key."""

from __future__ import annotations

import sqlite3
import time

from edgeorder.ordercore import Settings
from tests.ordercore.conftest import AUTH, StartCore, checkout, checkout_body


async def test_restart_keeps_orders_history_and_keys(start_core: StartCore) -> None:
    first = await start_core()
    created = [
        await checkout(first, checkout_body(), **{"Idempotency-Key": f"k{i}"}) for i in range(3)
    ]
    oid = created[0]["Orders"][0]["Id"]
    assert (await first.post(f"/api/order/{oid}/ship", headers=AUTH)).status == 200
    before = await (await first.get("/api/order/sent", headers=AUTH)).json()
    history = await (await first.get(f"/api/order/{oid}/history", headers=AUTH)).json()
    await first.close()

    second = await start_core()
    assert await (await second.get("/api/order/sent", headers=AUTH)).json() == before
    assert await (await second.get(f"/api/order/{oid}/history", headers=AUTH)).json() == history
    replay = await second.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": "k1"}
    )
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.json() == created[1]
    fresh = await checkout(second, checkout_body(), **{"Idempotency-Key": "k9"})
    assert fresh["Orders"][0]["Id"] > max(c["Orders"][0]["Id"] for c in created)
    # seeding again at start-up did not duplicate the catalog
    assert (await (await second.get("/api/sku", headers=AUTH)).json())["Total"] == 4


async def test_database_is_wal_and_migrated(start_core: StartCore, core_settings: Settings) -> None:
    client = await start_core()
    await checkout(client)
    await client.close()
    conn = sqlite3.connect(core_settings.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1, 2]
    finally:
        conn.close()


async def test_old_idempotency_keys_are_forgotten(
    start_core: StartCore, core_settings: Settings
) -> None:
    first = await start_core()
    await checkout(first, checkout_body(), **{"Idempotency-Key": "old"})
    await first.close()
    later = await start_core(clock=lambda: time.time() + 8 * 86400)  # past the 7-day TTL
    resp = await later.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": "old"}
    )
    assert resp.status == 201
    assert "Idempotent-Replayed" not in resp.headers
