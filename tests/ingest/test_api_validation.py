"""Limits at the edge: the REST API, the CLI and the registry refuse settings the event path
cannot use (a cancel window of 1e15 s made every long press poison), with a clear error --
never a 500 or a traceback. The limits are the domain's (``ingest.domain.devices``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from edgeorder import protocol as p
from edgeorder.ingest.domain.devices import CANCEL_WINDOW_MAX_S
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.support.proc import run_cli
from tests.web.support import api_alone

MAPPING = {"single": {"type": "reorder", "sku": "COFFEE-1KG", "quantity": 1}}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The API routes alone (no auth middleware: these tests are about their input)."""
    async with api_alone(tmp_path) as client:
        yield client


async def post_device(
    api: TestClient[web.Request, web.Application], **fields: Any
) -> tuple[int, Any]:
    body = {"device_id": "api-01", "mapping": MAPPING, **fields}
    resp = await api.post("/api/devices", json=body)
    return resp.status, await resp.json()


@pytest.mark.parametrize("window", [10**15, 1e15, 10**20, -1, CANCEL_WINDOW_MAX_S + 1])
async def test_a_cancel_window_out_of_range_is_a_clear_client_error(
    api: TestClient[web.Request, web.Application], window: float
) -> None:
    status, body = await post_device(api, cancel_window_s=window)
    assert status == 422
    (field,) = body["Fields"]
    assert field["Field"] == "cancel_window_s"
    says = field["Message"]
    assert (
        f"less than or equal to {CANCEL_WINDOW_MAX_S}" in says
        or "greater than or equal to 0" in says
    )


async def test_limits_of_quantity_and_name_hold_at_the_api(
    api: TestClient[web.Request, web.Application],
) -> None:
    for quantity in (0, p.QUANTITY_MAX + 1, 2**64):
        mapping = {"single": {"type": "reorder", "sku": "X", "quantity": quantity}}
        status, body = await post_device(api, mapping=mapping)
        assert status == 422, quantity
        assert body["Fields"][0]["Field"].endswith("quantity")
    status, _ = await post_device(api, name="n" * 201)
    assert status == 422
    status, body = await post_device(api, cancel_window_s=CANCEL_WINDOW_MAX_S, name="n" * 200)
    assert status == 201
    assert body["device"]["cancel_window_s"] == CANCEL_WINDOW_MAX_S


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"Customer": 5}, "profile.Customer"),
        ({"Shipping": "home"}, "profile.Shipping"),
        ({"PaymentMethod": [1]}, "profile.PaymentMethod"),
        ({"MerchantId": 7}, "profile.MerchantId"),
        ({"Currency": "real"}, "profile.Currency"),
    ],
)
async def test_a_profile_of_the_wrong_kind_is_refused_before_any_press(
    api: TestClient[web.Request, web.Application], profile: dict[str, Any], field: str
) -> None:
    """Each press of such a device used to end ``failed`` ("Customer: Input should be a valid
    dictionary"); the API now says so when the device is added."""
    status, body = await post_device(api, profile=profile)
    assert status == 422, body
    assert [f["Field"] for f in body["Fields"]] == [field]


async def test_a_profile_keeps_what_the_platform_judges(
    api: TestClient[web.Request, web.Application],
) -> None:
    profile = {"Customer": {"Name": "Ana", "Email": "ana@example.com"}, "Notes": {"x": 1}}
    status, body = await post_device(api, profile=profile)
    assert status == 201, body
    assert body["device"]["profile"] == profile  # nothing added, nothing dropped


@pytest.mark.parametrize("depth", [600, 5000, 100_000])
async def test_json_nested_too_deeply_is_a_client_error(
    api: TestClient[web.Request, web.Application], depth: int
) -> None:
    for method, path in (("POST", "/api/devices"), ("PATCH", "/api/devices/x-01")):
        resp = await api.request(
            method, path, data="[" * depth, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 422, (method, path, await resp.text())
        assert (await resp.json())["Error"] == "validation"


@pytest.mark.parametrize("outbox_id", ["99999999999999999999", "9223372036854775808", "0"])
async def test_a_buffer_id_past_int64_is_not_found(
    api: TestClient[web.Request, web.Application], outbox_id: str
) -> None:
    resp = await api.post(f"/api/buffer/{outbox_id}/retry")
    assert resp.status == 404


def test_the_registry_refuses_what_the_event_path_cannot_use(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ingest.db")
    mapping = p.ButtonMapping()
    try:
        for window in (10**15, -1, CANCEL_WINDOW_MAX_S + 1):
            with pytest.raises(registry.RegistryError, match=r"cancel window must be 0\.\.604800"):
                registry.add_device(db, "r-01", mapping=mapping, cancel_window_s=window)
        with pytest.raises(registry.RegistryError, match="name must be at most 200"):
            registry.add_device(db, "r-01", mapping=mapping, name="n" * 201)
        assert registry.list_devices(db) == []
    finally:
        db.conn.close()


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--cancel-window-s", "1000000000000000", "cancel window must be 0..604800 seconds"),
        ("--cancel-window-s", "soon", "'soon' is not a whole number"),
        ("--quantity", "0", "quantity must be 1..1000"),
        ("--sku", "", "invalid mapping: sku"),
    ],
)
def test_device_add_refuses_out_of_range_values_without_a_traceback(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    args = ["device", "add", "cli-01", "--sku", "COFFEE-1KG", "--allow-unknown-sku", option, value]
    done = run_cli(*args, "--data-dir", str(tmp_path))
    assert done.returncode != 0
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    db = open_db(tmp_path / "ingest.db")
    try:
        assert registry.list_devices(db) == []
    finally:
        db.conn.close()


def test_one_unusable_registry_row_does_not_take_the_others_down(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ingest.db")
    try:
        registry.add_device(db, "ok-01", mapping=p.ButtonMapping())
        registry.add_device(db, "bad-01", mapping=p.ButtonMapping())
        sensors = {f"s{i}": {"type": "none"} for i in range(p.SENSORS_MAX + 1)}
        db.execute(  # written before the limit existed
            "UPDATE devices SET mapping = ? WHERE device_id = 'bad-01'",
            [json.dumps({"sensors": sensors})],
        )
        assert list(registry.load_devices(db)) == ["ok-01"]
    finally:
        db.conn.close()
