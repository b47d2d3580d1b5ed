"""``GET /metrics`` of the order core: a real app over HTTP, read with Prometheus' own parser."""

from __future__ import annotations

import platform
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from edgeorder import __version__
from edgeorder.ordercore.metrics import BUCKETS, Metrics, escape_label

from .conftest import AUTH, StartCore, checkout, checkout_body

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient[Any, Any]) -> tuple[str, Samples]:
    resp = await client.get("/metrics")  # no token: public, as ingest's
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_by_route_template_method_and_code(start_core: StartCore) -> None:
    client = await start_core()
    created = await checkout(client)
    order_id = created["Orders"][0]["Id"]
    assert (await client.get(f"/api/order/sent/{order_id}", headers=AUTH)).status == 200
    assert (await client.get("/api/order/sent/999", headers=AUTH)).status == 404
    assert (await client.get("/api/order/sent/1")).status == 401  # no token
    assert (await client.get("/no/such/path", headers=AUTH)).status == 404

    _, samples = await scrape(client)
    requests = "edgeorder_ordercore_http_requests_total"
    route = "/api/order/sent/{id}"
    assert value(samples, requests, route=route, method="GET", code="200") == 1
    assert value(samples, requests, route=route, method="GET", code="404") == 1
    assert value(samples, requests, route=route, method="GET", code="401") == 1
    assert value(samples, requests, route="/api/checkout", method="POST", code="201") == 1
    # an unmatched path is one bounded label, never the path itself
    assert value(samples, requests, route="unmatched", method="GET", code="404") == 1
    assert not any("/no/such/path" in str(labels) for _, labels in samples)


async def test_duration_histogram_is_cumulative_and_counts_every_request(
    start_core: StartCore,
) -> None:
    client = await start_core()
    for _ in range(3):
        assert (await client.get("/livez")).status == 200
    _, samples = await scrape(client)
    name = "edgeorder_ordercore_http_request_duration_seconds"
    base = {"route": "/livez", "method": "GET"}
    buckets = [value(samples, f"{name}_bucket", **base, le=str(b)) for b in BUCKETS]
    inf = value(samples, f"{name}_bucket", **base, le="+Inf")
    assert buckets == sorted(buckets)
    assert inf == value(samples, f"{name}_count", **base) == 3
    assert 0 < value(samples, f"{name}_sum", **base) < 3 * BUCKETS[-1]


async def test_orders_created_replays_and_orders_by_state(start_core: StartCore) -> None:
    client = await start_core()
    first = await checkout(client, checkout_body(), **{"Idempotency-Key": "k-1"})
    again = await client.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": "k-1"}
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    await checkout(client)
    order_id = first["Orders"][0]["Id"]
    cancel = await client.post(f"/api/order/{order_id}/cancel", headers=AUTH, json={})
    assert cancel.status == 200, await cancel.text()

    text, samples = await scrape(client)
    assert value(samples, "edgeorder_ordercore_orders_created_total") == 2
    assert value(samples, "edgeorder_ordercore_idempotent_replays_total") == 1
    orders = "edgeorder_ordercore_orders"
    assert value(samples, orders, state="created") == 1
    cancelled = sum(
        value(samples, orders, state=s) for s in ("cancelled_by_user", "cancelled_by_merchant")
    )
    assert cancelled == 1
    assert (orders, frozenset({("state", "shipped")})) in samples  # listed at 0 too
    assert "# TYPE edgeorder_ordercore_orders gauge" in text
    assert "# TYPE edgeorder_ordercore_http_requests_total counter" in text


async def test_build_info(client: TestClient[Any, Any]) -> None:
    _, samples = await scrape(client)
    labels = {
        "service": "ordercore",
        "version": __version__,
        "python": platform.python_version(),
        "backend": "sqlite",
    }
    assert value(samples, "edgeorder_build_info", **labels) == 1


async def test_metrics_is_in_the_openapi_document(client: TestClient[Any, Any]) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    op = doc["paths"]["/metrics"]["get"]
    assert op["security"] == []
    assert op["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}


def test_label_values_are_escaped() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    metrics = Metrics()
    metrics.observe('/x"y', "GET", 200, 0.2)
    families = list(text_string_to_metric_families(metrics.render([])))
    routes = {s.labels.get("route") for f in families for s in f.samples}
    assert '/x"y' in routes
