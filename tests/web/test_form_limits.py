"""The dashboard's device forms refuse values outside the domain's limits with a page that
says why (400), as the CLI and the REST API do -- never a 500."""

from __future__ import annotations

from edgeorder import protocol as p
from tests.web.conftest import WebEnv
from tests.web.support import add_device


async def test_provisioning_refuses_a_name_past_the_limit(webenv: WebEnv) -> None:
    await webenv.login()
    resp = await webenv.post("/provision", device_id="hall-08", name="n" * 201, single_type="none")
    assert resp.status == 400
    assert "name must be at most 200 characters" in await resp.text()


async def test_a_mapping_quantity_out_of_range_is_refused(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    await webenv.login()
    for quantity in ("0", str(p.QUANTITY_MAX + 1), "9" * 30, "9" * 5000):
        resp = await webenv.post(
            "/devices/kitchen-01/mapping",
            single_type="reorder",
            single_sku="COFFEE-1KG",
            single_quantity=quantity,
            double_type="none",
            long_type="cancel_last",
        )
        assert resp.status == 400, quantity
        assert "Mapping not saved" in await resp.text()
    page = await webenv.client.get("/devices/kitchen-01")
    assert f'max="{p.QUANTITY_MAX}"' in await page.text()
