"""Tags, sites and bulk actions through the REST API of a running ingest (real Mosquitto, the
real order core): filters on ``GET /api/devices``, ``POST /api/bulk/devices`` all or nothing
with each failing device's reason, the new env pushed to the devices as retained config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edgeorder import protocol as p
from tests.ingest.support import Ingest, OrderCore
from tests.ingest.test_api_webhooks import api
from tests.ingest.test_sku_refusal import mapping, token_for
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


def ids(listed: dict[str, list[dict[str, object]]]) -> list[object]:
    return [d["device_id"] for d in listed["Data"]]


async def test_tags_sites_and_bulk_actions_over_the_api(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    token = token_for(ingest_dir)
    for device_id, tags, site in (
        ("b-01", ["bar"], "Porto"),
        ("b-02", ["bar", "pilot"], "Porto"),
        ("k-01", ["kitchen"], "Lisbon"),
    ):
        body = {
            "device_id": device_id,
            "mapping": mapping("COFFEE-1KG"),
            "tags": tags,
            "site": site,
        }
        status, created = await api(ingest, "POST", "/api/devices", token, body)
        assert status == 201, created
        assert (created["device"]["tags"], created["device"]["site"]) == (sorted(tags), site)

    _, listed = await api(ingest, "GET", "/api/devices?tag=bar", token)
    assert ids(listed) == ["b-01", "b-02"]
    _, listed = await api(ingest, "GET", "/api/devices?site=Lisbon", token)
    assert ids(listed) == ["k-01"]
    _, listed = await api(ingest, "GET", "/api/devices?tag=pilot&site=Porto", token)
    assert ids(listed) == ["b-02"]
    status, bad = await api(
        ingest,
        "POST",
        "/api/devices",
        token,
        {"device_id": "x-01", "mapping": mapping("COFFEE-1KG"), "tags": ["not ok"]},
    )
    assert status == 422, bad
    status, patched = await api(
        ingest, "PATCH", "/api/devices/k-01", token, {"tags": ["kitchen", "floor-2"], "site": ""}
    )
    assert (status, patched["tags"], patched["site"]) == (200, ["floor-2", "kitchen"], "")

    # All or nothing: one unknown device and nobody changes; each failure is named.
    bulk = {"device_ids": ["b-01", "ghost", "b-02"], "action": "set_env", "env": "dev"}
    status, err = await api(ingest, "POST", "/api/bulk/devices", token, bulk)
    assert (status, err["Error"]) == (409, "bulk_failed")
    assert err["Devices"] == [{"device_id": "ghost", "error": "unknown device 'ghost'"}]
    _, listed = await api(ingest, "GET", "/api/devices?tag=bar", token)
    assert {d["env"] for d in listed["Data"]} == {"prod"}

    probe.subscribe(p.device_topic("b-02", p.Channel.CONFIG))
    bulk["device_ids"] = ["b-01", "b-02"]
    status, done = await api(ingest, "POST", "/api/bulk/devices", token, bulk)
    assert (status, done) == (200, {"action": "set_env dev", "changed": ["b-01", "b-02"]})
    _, listed = await api(ingest, "GET", "/api/devices?tag=bar", token)
    assert {d["env"] for d in listed["Data"]} == {"dev"}
    config = await asyncio.to_thread(
        probe.wait_for,
        lambda m: m.topic.endswith("b-02/config") and json.loads(m.payload)["env"] == "dev",
    )
    assert config is not None

    status, done = await api(
        ingest,
        "POST",
        "/api/bulk/devices",
        token,
        {"device_ids": ["b-01", "k-01"], "action": "add_tag", "tag": "night"},
    )
    assert (status, done["changed"]) == (200, ["b-01", "k-01"])
    _, listed = await api(ingest, "GET", "/api/devices?tag=night", token)
    assert ids(listed) == ["b-01", "k-01"]
    status, err = await api(
        ingest, "POST", "/api/bulk/devices", token, {"device_ids": ["b-01"], "action": "set_env"}
    )
    assert (status, err["Error"]) == (400, "invalid")
    status, _ = await api(
        ingest, "POST", "/api/bulk/devices", token, {"device_ids": [], "action": "enable"}
    )
    assert status == 422
