"""Which order events ingest asks the order core to send it."""

from __future__ import annotations

import pytest

from edgeorder.ingest.connectors.ordercore import WEBHOOK_EVENTS, OrderCoreConnector, state_for_code
from tests.ingest.support import CORE_TOKEN, OrderCore

pytestmark = pytest.mark.integration


async def test_ingest_subscribes_only_to_changes_it_does_not_already_know(
    ordercore: OrderCore,
) -> None:
    # order/created (and authorized) leave an order "ordered", which ingest learns from the
    # checkout itself: a webhook per new order would only double both services' work per event.
    connector = OrderCoreConnector(ordercore.url, CORE_TOKEN)
    try:
        await connector.register_webhook("http://127.0.0.1:9/webhooks/ordercore", "s3cret")
    finally:
        await connector.close()
    [hook] = (await ordercore.call("GET", "/api/webhooks"))["Data"]
    assert sorted(hook["Events"]) == sorted(WEBHOOK_EVENTS)
    assert "*" not in hook["Events"]
    assert "order/created" not in hook["Events"]
    assert "order/authorized" not in hook["Events"]
    for needed in (
        "order/paid",
        "order/shipped",
        "order/completed",
        "order/cancelled",
        "order/denied",
    ):
        assert needed in hook["Events"]


def test_the_events_left_out_only_ever_mean_ordered() -> None:
    assert state_for_code(0) == state_for_code(1) == "ordered"  # created, authorized
