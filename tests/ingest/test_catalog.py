"""The platform's catalog and the SKU check of every mapping change (``ingest.orders.catalog``):
the pure rule, the cache (injected clock), and each connector's catalog as its seed offers it
(the order core's ``GET /api/sku`` for real, Nuvemshop's and OneEntry's configured maps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import CatalogItem, TransientError
from edgeorder.ingest.connectors.evendi import EvendiConnector
from edgeorder.ingest.connectors.nuvemshop import NuvemshopConnector
from edgeorder.ingest.connectors.oneentry import OneEntryConnector
from edgeorder.ingest.connectors.ordercore import CATALOG_PAGE_SIZE, OrderCoreConnector
from edgeorder.ingest.orders.catalog import (
    CatalogUnavailableError,
    CatalogView,
    SkuCatalog,
    UnknownSkuError,
    check_mapping,
    mapping_skus,
)
from edgeorder.ingest.settings import ConnectorSettings
from tests.ingest.support import CORE_TOKEN, OrderCore
from tests.support.net import free_port

SEED_SKUS = {"COFFEE-1KG", "TEA-250G", "FILTER-100", "WATER-5L"}


def reorder(sku: str) -> p.ReorderAction:
    return p.ReorderAction(sku=sku)


MAPPING = p.ButtonMapping(
    single=reorder("COFFEE-1KG"),
    double=reorder("NOPE-1"),
    sensors={"level": reorder("COFFEE-1KG"), "other": reorder("NOPE-2")},
)
KNOWN = CatalogView("ordercore", (CatalogItem("COFFEE-1KG"), CatalogItem("TEA-250G")))


def test_every_reordered_sku_is_checked_once() -> None:
    assert mapping_skus(MAPPING) == ["COFFEE-1KG", "NOPE-1", "NOPE-2"]
    assert mapping_skus(p.ButtonMapping()) == []


def test_unknown_skus_are_named_with_the_platform() -> None:
    with pytest.raises(UnknownSkuError) as err:
        check_mapping(MAPPING, KNOWN, allow_unknown=False)
    assert str(err.value) == "SKUs 'NOPE-1', 'NOPE-2' not in the catalog of ordercore"
    warnings = check_mapping(MAPPING, KNOWN, allow_unknown=True)
    assert warnings == [
        "SKU 'NOPE-1' is not in the catalog of ordercore (allowed)",
        "SKU 'NOPE-2' is not in the catalog of ordercore (allowed)",
    ]
    ok = p.ButtonMapping(single=reorder("TEA-250G"))
    assert check_mapping(ok, KNOWN, allow_unknown=False) == []


def test_an_unreachable_catalog_refuses_unless_allowed() -> None:
    down = CatalogView("ordercore", None, "order core unreachable: ClientConnectorError")
    ok = p.ButtonMapping(single=reorder("COFFEE-1KG"))
    with pytest.raises(CatalogUnavailableError) as err:
        check_mapping(ok, down, allow_unknown=False)
    assert "'COFFEE-1KG'" in str(err.value)
    assert "catalog of ordercore is unreachable (order core unreachable" in str(err.value)
    assert check_mapping(ok, down, allow_unknown=True) == [
        "SKU COFFEE-1KG not checked: ordercore unreachable"
    ]
    assert check_mapping(p.ButtonMapping(), down, allow_unknown=False) == []  # no SKU, no read


def test_a_platform_without_a_catalog_takes_any_sku_with_a_warning() -> None:
    none = CatalogView("e-vendi", None)
    assert not none.has_catalog
    assert check_mapping(MAPPING, none, allow_unknown=False) == [
        "e-vendi has no catalog: SKU COFFEE-1KG, NOPE-1, NOPE-2 not checked"
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_catalog_is_read_once_per_ttl_and_a_failure_soon_again(
    tmp_path: Path,
) -> None:
    core = OrderCore(tmp_path / "core")
    connector = OrderCoreConnector(core.url, CORE_TOKEN, timeout_s=2)
    clock = Clock()
    catalog = SkuCatalog(connector, ttl_s=60, clock=clock)
    try:
        down = await catalog.view()  # nothing listens yet
        assert (down.items, down.has_catalog) == (None, True)
        assert down.error is not None
        assert "unreachable" in down.error
        await core.start()
        assert (await catalog.view()) is down  # a failure is the answer for a few seconds
        clock.now = 5.0
        fresh = await catalog.view()
        assert {i.sku for i in fresh.items or ()} == SEED_SKUS
        assert ("COFFEE-1KG", "Coffee beans, 1 kg (89.90 BRL)") in {
            (i.sku, i.label) for i in fresh.items or ()
        }
        await core.call("POST", "/api/sku", _sku("NEW-1"))
        clock.now = 64.9
        assert await catalog.view() is fresh  # still within the TTL: the new SKU is not seen
        with pytest.raises(UnknownSkuError):
            await catalog.check(p.ButtonMapping(single=reorder("NEW-1")))
        clock.now = 65.0
        assert await catalog.check(p.ButtonMapping(single=reorder("NEW-1"))) == []
    finally:
        await connector.close()
        await core.stop()


def _sku(sku: str, n: int = 0) -> dict[str, object]:
    return {
        "Sku": sku,
        "SkuDescription": f"test {sku}",
        "Price": 100 + n,
        "Currency": "BRL",
        "MerchantId": "00000000-0000-4000-8000-000000000001",
    }


async def test_the_order_core_catalog_is_read_page_by_page(tmp_path: Path) -> None:
    core = await OrderCore(tmp_path / "core").start()
    connector = OrderCoreConnector(core.url, CORE_TOKEN, timeout_s=5)
    try:
        extra = CATALOG_PAGE_SIZE  # with the seed's four: two pages
        for n in range(extra):
            await core.call("POST", "/api/sku", _sku(f"BULK-{n:03d}", n))
        items = await connector.catalog()
        assert len(items) == len(SEED_SKUS) + extra
        assert {i.sku for i in items} >= SEED_SKUS | {"BULK-000", f"BULK-{extra - 1:03d}"}
    finally:
        await connector.close()
        await core.stop()


async def test_an_unreachable_order_core_is_a_transient_error() -> None:
    connector = OrderCoreConnector(f"http://127.0.0.1:{free_port()}", CORE_TOKEN, timeout_s=1)
    try:
        with pytest.raises(TransientError):
            await connector.catalog()
    finally:
        await connector.close()


async def test_nuvemshop_and_oneentry_offer_their_configured_maps() -> None:
    nuvem = NuvemshopConnector(
        ConnectorSettings(
            kind="nuvemshop",
            options={
                "store_id": "123",
                "variants": {"COFFEE-1KG": 101, "TEA-250G": 102},
                "user_agent": "edgeorder (ops@shop.example)",
            },
        )
    )
    entry = OneEntryConnector(
        ConnectorSettings(
            kind="oneentry",
            options={
                "marker": "orders",
                "form_identifier": "f",
                "payment_account_identifier": "cash",
                "products": {"COFFEE-1KG": 2957},
            },
        )
    )
    evendi = EvendiConnector(
        ConnectorSettings(kind="evendi", options={"organization_external_id": "org-1"})
    )
    try:
        assert await nuvem.catalog() == [
            CatalogItem("COFFEE-1KG", "variant_id 101"),
            CatalogItem("TEA-250G", "variant_id 102"),
        ]
        assert await entry.catalog() == [CatalogItem("COFFEE-1KG", "productId 2957")]
        view = await SkuCatalog(nuvem).view()
        assert (view.platform, view.source) == ("nuvemshop", "options.variants")
        assert (await SkuCatalog(evendi).view()).has_catalog is False
    finally:
        for c in (nuvem, entry, evendi):
            await c.close()
