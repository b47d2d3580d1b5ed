"""A mapping with a SKU the platform does not sell is refused where it is made -- the REST API
and ``edgeorder device add`` -- naming the SKU and the platform, instead of failing the
device's first press; while the platform is unreachable the change is refused too, unless the
caller allows an unknown SKU. Real ingest, the real order core and its seed catalog."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web import create_api_token
from tests.ingest.support import CORE_TOKEN, Ingest, OrderCore
from tests.ingest.test_api_webhooks import api
from tests.support.proc import run_cli

pytestmark = pytest.mark.integration


def mapping(sku: str) -> dict[str, Any]:
    return {"single": {"type": "reorder", "sku": sku, "quantity": 1}}


def token_for(ingest_dir: Path) -> str:
    db = open_db(ingest_dir / "ingest.db")
    try:
        return create_api_token(db, "tests")
    finally:
        db.conn.close()


async def test_the_api_refuses_unknown_skus_and_offers_the_catalog(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore
) -> None:
    token = token_for(ingest_dir)
    status, catalog = await api(ingest, "GET", "/api/catalog", token)
    assert status == 200
    assert (catalog["platform"], catalog["has_catalog"], catalog["available"]) == (
        "ordercore",
        True,
        True,
    )
    assert {"sku": "TEA-250G", "label": "Black tea, 250 g (24.50 BRL)"} in catalog["Data"]

    body = {"device_id": "sku-01", "mapping": mapping("NOT-SOLD")}
    status, err = await api(ingest, "POST", "/api/devices", token, body)
    assert (status, err["Error"]) == (400, "unknown_sku")
    assert "SKU 'NOT-SOLD' not in the catalog of ordercore" in err["Message"]
    status, _ = await api(ingest, "GET", "/api/devices/sku-01", token)
    assert status == 404  # nothing was stored

    status, _ = await api(
        ingest, "POST", "/api/devices", token, {**body, "mapping": mapping("TEA-250G")}
    )
    assert status == 201
    patch = {"mapping": {**mapping("TEA-250G"), "double": {"type": "reorder", "sku": "GONE"}}}
    status, err = await api(ingest, "PATCH", "/api/devices/sku-01", token, patch)
    assert (status, err["Error"]) == (400, "unknown_sku")
    assert "'GONE'" in err["Message"]
    status, _ = await api(ingest, "PATCH", "/api/devices/sku-01", token, {"enabled": False})
    assert status == 200  # no mapping in the change: nothing to check

    await ordercore.stop()
    ingest.service.catalog.forget()  # as the end of its TTL would
    status, err = await api(
        ingest, "PATCH", "/api/devices/sku-01", token, {"mapping": mapping("TEA-250G")}
    )
    assert (status, err["Error"]) == (424, "catalog_unavailable")
    assert "cannot check SKU 'TEA-250G': the catalog of ordercore is unreachable" in err["Message"]
    assert "allow_unknown_sku" in err["Message"]
    status, catalog = await api(ingest, "GET", "/api/catalog", token)
    assert (status, catalog["available"], catalog["Data"]) == (200, False, [])
    allowed = {"mapping": mapping("WATER-5L"), "allow_unknown_sku": True}
    status, device = await api(ingest, "PATCH", "/api/devices/sku-01", token, allowed)
    assert (status, device["mapping"]["single"]["sku"]) == (200, "WATER-5L")


async def test_device_add_refuses_an_unknown_sku_naming_it_and_the_platform(
    tmp_path: Path, ordercore: OrderCore
) -> None:
    data = tmp_path / "cli"

    def add(device: str, sku: str, *extra: str) -> Any:
        return run_cli(
            *("device", "add", device, "--sku", sku, "--data-dir", str(data), *extra),
            EDGEORDER_INGEST_ORDERCORE_URL=ordercore.url,
            EDGEORDER_INGEST_ORDERCORE_TOKEN=CORE_TOKEN,
        )

    # the order core runs on this loop: the CLI runs in a thread so it can answer
    refused = await asyncio.to_thread(add, "cli-01", "NOT-SOLD")
    assert refused.returncode == 1
    assert "SKU 'NOT-SOLD' not in the catalog of ordercore" in refused.stderr
    assert "--allow-unknown-sku" in refused.stderr
    added = await asyncio.to_thread(add, "cli-01", "COFFEE-1KG")
    assert added.returncode == 0, added.stderr
    forced = await asyncio.to_thread(add, "cli-02", "NOT-SOLD", "--allow-unknown-sku")
    assert forced.returncode == 0, forced.stderr
    assert "warning: SKU 'NOT-SOLD' is not in the catalog of ordercore (allowed)" in forced.stderr

    await ordercore.stop()
    down = await asyncio.to_thread(add, "cli-03", "COFFEE-1KG")
    assert down.returncode == 1
    assert "the catalog of ordercore is unreachable" in down.stderr
    listed = await asyncio.to_thread(run_cli, "device", "list", "--json", "--data-dir", str(data))
    assert '"cli-03"' not in listed.stdout
    assert '"cli-01"' in listed.stdout
