"""The dashboard's device forms refuse values outside the domain's limits with a page that
says why (400), as the CLI and the REST API do -- never a 500."""

from __future__ import annotations

from edgeorder import protocol as p
from tests.web.conftest import WebEnv
from tests.web.support import add_device
from tests.web.test_pages import reader


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


async def test_an_env_that_is_not_dev_or_prod_is_refused_not_made_prod(webenv: WebEnv) -> None:
    await webenv.login()
    for env in ("DEV", "staging", ""):
        resp = await webenv.post("/provision", device_id="hall-09", env=env, single_type="none")
        assert resp.status == 400, env
        assert "env must be dev or prod" in await resp.text()
    with reader(webenv) as conn:
        assert conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0
    resp = await webenv.post("/provision", device_id="hall-09", env="dev", single_type="none")
    assert resp.status == 200


async def test_enabled_takes_0_or_1_and_nothing_else_disables(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    await webenv.login()
    for value in ("on", "true", "yes", ""):
        assert (await webenv.post("/devices/kitchen-01/enabled", enabled=value)).status == 400
    with reader(webenv) as conn:
        assert conn.execute("SELECT enabled FROM devices").fetchone()[0] == 1


async def test_a_bulk_action_with_control_characters_in_back_still_answers(
    webenv: WebEnv,
) -> None:
    """The change is applied and answered (a redirect to the fleet), never a dropped
    connection for a Location header aiohttp will not write."""
    add_device(webenv.db_path, "kitchen-01")
    await webenv.login()
    resp = await webenv.client.post(
        "/devices/bulk",
        data={
            "csrf_token": webenv.csrf,
            "action": "add_tag",
            "tag": "bar",
            "device": "kitchen-01",
            "back": "/?x=1\r\nSet-Cookie: a=b",
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/?bulk=1"
