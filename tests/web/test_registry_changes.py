"""A registry change answers only once the running service's device cache has it: the next
press of a changed device follows the change (read your writes), through the REST API, the
dashboard's forms and bulk actions alike; a refused change reloads nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgeorder.ingest.web.api import install_api
from tests.web.conftest import WebEnv, serve_web
from tests.web.support import add_device


@pytest.fixture
async def webapi(tmp_path: Path) -> AsyncIterator[WebEnv]:
    async with serve_web(tmp_path, before=install_api) as env:
        yield env


async def test_api_patch_reloads_the_cache_before_answering(webapi: WebEnv) -> None:
    add_device(webapi.db_path, "kitchen-01")
    csrf = await webapi.login()
    headers = {"X-CSRF-Token": csrf}
    async with webapi.bus.subscribe() as notices:
        resp = await webapi.client.patch(
            "/api/devices/kitchen-01", json={"env": "dev"}, headers=headers
        )
        assert resp.status == 200, await resp.text()
        assert webapi.publisher.reloads == 1
        notice = await notices.get()
    assert (notice.kind, notice.device_id) == ("device", "kitchen-01")
    assert notice.data == {"source": "api", "reloaded": True}  # this worker need not reload
    assert webapi.publisher.pushed == ["kitchen-01"]
    resp = await webapi.client.patch("/api/devices/nobody", json={"env": "dev"}, headers=headers)
    assert resp.status == 404
    assert webapi.publisher.reloads == 1


async def test_dashboard_changes_reload_the_cache_before_answering(webapi: WebEnv) -> None:
    add_device(webapi.db_path, "kitchen-01")
    add_device(webapi.db_path, "hall-07")
    await webapi.login()
    assert (await webapi.post("/devices/kitchen-01/enabled", enabled="0")).status == 303
    assert webapi.publisher.reloads == 1
    assert webapi.publisher.pushed == []  # enabling changes no desired config
    assert (await webapi.post("/devices/kitchen-01/env", env="dev")).status == 303
    assert webapi.publisher.reloads == 2
    assert webapi.publisher.pushed == ["kitchen-01"]
    resp = await webapi.client.post(
        "/devices/bulk",
        data={
            "csrf_token": webapi.csrf,
            "action": "env_prod",
            "device": ["kitchen-01", "hall-07"],
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert webapi.publisher.reloads == 3  # once for the whole bulk action
    assert sorted(webapi.publisher.pushed) == ["hall-07", "kitchen-01", "kitchen-01"]


async def test_a_committed_change_is_answered_as_done_when_the_reload_fails(
    webapi: WebEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change is committed: the caller must not read a failure into it (and retry). The
    registry follower reloads once the database answers again."""
    add_device(webapi.db_path, "kitchen-01")
    csrf = await webapi.login()

    async def broken() -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(webapi.publisher, "reload_devices", broken)
    monkeypatch.setattr(webapi.publisher, "publish_config", lambda _id: broken())
    async with webapi.bus.subscribe() as notices:
        resp = await webapi.client.patch(
            "/api/devices/kitchen-01", json={"env": "dev"}, headers={"X-CSRF-Token": csrf}
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["env"] == "dev"
        notice = await notices.get()
    assert notice.data == {"source": "api", "reloaded": False}  # this worker reloads on it
