"""Migration 2 on a database of the release before: principals, histories, legacy keys."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from edgeorder.ordercore import SEED_CATALOG, Settings
from edgeorder.ordercore.store.migrations import MIGRATIONS
from tests.ordercore.conftest import StartCore, checkout_body

T0 = "2026-05-01T10:00:00.000Z"
T1 = "2026-05-02T10:00:00.000Z"
T2 = "2026-05-03T10:00:00.000Z"


def _v1_database(path: Path) -> None:
    """A database as release 1 left it: three orders, a webhook, an idempotency key."""
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_on TEXT)")
    MIGRATIONS[0](conn)
    conn.execute("INSERT INTO schema_migrations VALUES (1, ?)", (T0,))
    conn.execute("INSERT INTO checkouts (created_on) VALUES (?)", (T0,))
    customer = json.dumps({**checkout_body()["Customer"], "UserId": "u-old"})
    # (status, Status changes): pending; captured then cancelled (refunded); cancelled unpaid
    for status, steps in ((0, []), (21, [(T1, "2"), (T2, "21")]), (22, [(T1, "22")])):
        cur = conn.execute(
            "INSERT INTO orders (checkout_id, created_on, updated_on, status, merchant_id,"
            " merchant_name, customer, currency, amount) VALUES (1, ?, ?, ?, 'm', 'M', ?,"
            " 'BRL', 1000)",
            (T0, T0, status, customer),
        )
        for at, to in [(T0, "0"), *steps]:
            conn.execute(
                "INSERT INTO order_history (order_id, at, action, status, field, to_value)"
                " VALUES (?, ?, 'x', ?, 'Status', ?)",
                (cur.lastrowid, at, int(to), to),
            )
    conn.execute(
        "INSERT INTO webhooks (url, events, secret, created_on) VALUES"
        " ('http://127.0.0.1:9/h', '[\"*\"]', 's', ?)",
        (T0,),
    )
    conn.execute(
        "INSERT INTO idempotency_keys VALUES ('k-old', 'h', 201, '{\"CheckoutId\":1}', 1e12)"
    )
    conn.close()


async def test_a_release_1_database_is_migrated(tmp_path: Path, start_core: StartCore) -> None:
    settings = Settings(data_dir=tmp_path / "oc", tokens=["t"], catalog_seed=SEED_CATALOG)
    _v1_database(settings.db_path)
    client = await start_core(settings)
    headers = {"Authorization": "Bearer t"}

    async def get(path: str) -> Any:
        resp = await client.get(path, headers=headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    values = [await get(f"/api/order/{i}/history/values") for i in (1, 2, 3)]
    assert [[(v["Status"], v["TotalDelta"], v["TotalPaidDiff"]) for v in vs] for vs in values] == [
        [("PENDING", 1000, 0)],
        [("PAID", 1000, 1000), ("PAID", -1000, -1000)],
        [("CANCELLED", 1000, 0)],
    ]
    assert values[1][0]["ClosedOn"] == T1
    refunded = await get("/api/order/received/2")
    assert (refunded["PaidOn"], refunded["State"]) == (T1, "cancelled")
    page = await get("/api/order/sent?userId=u-old")
    assert page["Total"] == 3  # the buyer's UserId is now a column
    hooks = await get("/api/webhooks")
    assert hooks["Total"] == 1  # kept, and still the admin's (every order)
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("SELECT owner, key FROM idempotency_keys").fetchall() == [("", "k-old")]
        assert conn.execute("SELECT owner FROM webhooks").fetchall() == [("admin",)]
    finally:
        conn.close()
