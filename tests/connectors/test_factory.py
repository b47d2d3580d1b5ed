"""make_connector builds the platform named by settings.kind, with its options checked."""

from __future__ import annotations

import pytest

from edgeorder.ingest.connectors.common import ConnectorOptionsError
from edgeorder.ingest.connectors.evendi import EvendiConnector
from edgeorder.ingest.connectors.factory import make_connector
from edgeorder.ingest.connectors.nuvemshop import NuvemshopConnector
from edgeorder.ingest.connectors.oneentry import OneEntryConnector
from edgeorder.ingest.connectors.settings import ConnectorSettings

OPTIONS = {
    "nuvemshop": {"store_id": "1", "variants": {"A": 1}, "user_agent": "edgeorder (x@y.z)"},
    "evendi": {"organization_external_id": "1001"},
    "oneentry": {
        "marker": "m",
        "form_identifier": "f",
        "payment_account_identifier": "p",
        "products": {"A": 1},
    },
}
CLASSES = {
    "nuvemshop": NuvemshopConnector,
    "evendi": EvendiConnector,
    "oneentry": OneEntryConnector,
}


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_builds_the_named_platform(kind: str) -> None:
    conn = make_connector(ConnectorSettings(kind=kind, options=OPTIONS[kind]))
    try:
        assert isinstance(conn, CLASSES[kind])
        assert conn.name == {"evendi": "e-vendi"}.get(kind, kind)
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_bad_options_fail_at_construction(kind: str) -> None:
    with pytest.raises(ConnectorOptionsError, match=kind.replace("evendi", "e-vendi")):
        make_connector(ConnectorSettings(kind=kind, options={}))


async def test_ordercore_gets_the_default_profile_and_batch_size() -> None:
    from edgeorder.ingest.connectors.ordercore import DEFAULT_PROFILE, OrderCoreConnector

    conn = make_connector(
        ConnectorSettings(kind="ordercore", base_url="http://127.0.0.1:9"),
        default_profile={"Customer": {"Name": "Ana"}},
        batch_max=5,
    )
    try:
        assert isinstance(conn, OrderCoreConnector)
        assert conn.batch_max == 5
        # laid over the built-in profile: what the operator leaves out keeps its default
        assert conn._profile["Customer"] == {"Name": "Ana"}
        assert conn._profile["Shipping"] == DEFAULT_PROFILE["Shipping"]
    finally:
        await conn.close()
