"""The fake e-vendi itself, against its seed: the seed's own example passes, and everything the
seed rules out is refused with the seed's status, so the fake can catch a connector's bug."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.connectors.fake_evendi import ATTRIBUTES, SEED_ENVS, FakeEvendi

# The seed's example body, verbatim (evendi-closeOrder.md, "Atributos").
SEED_EXAMPLE = {
    "env": "dev",
    "integrationToken": "seu token",
    "organizationExternalId": "seu id",
    "orderId": "id od pedido",
}


@pytest.fixture
async def seed_evendi() -> AsyncIterator[FakeEvendi]:
    """A fake whose credentials and order are the seed example's."""
    fake = FakeEvendi(open_orders={"id od pedido"}, token="seu token", org="seu id")
    await fake.serve()
    yield fake
    await fake.stop()


async def post(
    fake: FakeEvendi, body: Any, *, method: str = "POST", content_type: str = "application/json"
) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            fake.url + "/api/closeOrder",
            data=data,
            headers={"Content-Type": content_type},
        ) as resp,
    ):
        return resp.status, await resp.text()


async def test_the_seed_example_closes_the_order(seed_evendi: FakeEvendi) -> None:
    status, text = await post(seed_evendi, SEED_EXAMPLE)
    assert (status, json.loads(text)) == (200, {"success": True})
    assert seed_evendi.closed == {"id od pedido": "dev"}
    # closing it again is not assumed to succeed
    assert json.loads((await post(seed_evendi, SEED_EXAMPLE))[1]) == {"success": False}


async def test_the_seed_text_answer(seed_evendi: FakeEvendi) -> None:
    seed_evendi.text_answers = True
    assert await post(seed_evendi, SEED_EXAMPLE) == (200, "success")


@pytest.mark.parametrize("env", sorted(SEED_ENVS))
async def test_every_env_spelling_the_seed_shows_is_taken(
    seed_evendi: FakeEvendi, env: str
) -> None:
    assert (await post(seed_evendi, {**SEED_EXAMPLE, "env": env}))[0] == 200


@pytest.mark.parametrize("env", ["prod", "DEV", "PROD", "Staging", " dev", ""])
async def test_an_env_the_seed_never_shows_is_400(seed_evendi: FakeEvendi, env: str) -> None:
    assert await post(seed_evendi, {**SEED_EXAMPLE, "env": env}) == (400, "")
    assert seed_evendi.closed == {}


@pytest.mark.parametrize("name", ATTRIBUTES)
async def test_each_required_attribute_is_required_and_a_string(
    seed_evendi: FakeEvendi, name: str
) -> None:
    missing = {k: v for k, v in SEED_EXAMPLE.items() if k != name}
    assert (await post(seed_evendi, missing))[0] == 400
    assert (await post(seed_evendi, {**SEED_EXAMPLE, name: 7}))[0] == 400
    assert (await post(seed_evendi, {**SEED_EXAMPLE, name: None}))[0] == 400
    assert seed_evendi.closed == {}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"success"', b""])
async def test_a_body_that_is_not_a_json_object_is_400(
    seed_evendi: FakeEvendi, body: bytes
) -> None:
    assert (await post(seed_evendi, body))[0] == 400


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_a_method_other_than_post_is_405(seed_evendi: FakeEvendi, method: str) -> None:
    assert (await post(seed_evendi, SEED_EXAMPLE, method=method))[0] == 405


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_typed_is_415(
    seed_evendi: FakeEvendi, content_type: str
) -> None:
    assert (await post(seed_evendi, SEED_EXAMPLE, content_type=content_type))[0] == 415


async def test_unknown_credentials_are_refused(seed_evendi: FakeEvendi) -> None:
    assert (await post(seed_evendi, {**SEED_EXAMPLE, "integrationToken": "x"}))[0] == 400
    assert (await post(seed_evendi, {**SEED_EXAMPLE, "organizationExternalId": "x"}))[0] == 400


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.dictionaries(
        st.sampled_from([*ATTRIBUTES, "extra"]),
        st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()),
    )
)
async def test_only_a_complete_seed_shaped_body_ever_closes(
    seed_evendi: FakeEvendi, body: dict[str, Any]
) -> None:
    status, _ = await post(seed_evendi, body)
    well_formed = (
        all(isinstance(body.get(k), str) and body[k] for k in ATTRIBUTES)
        and body["env"] in SEED_ENVS
    )
    if not well_formed:
        assert status == 400
    assert seed_evendi.closed == {}  # never the seed's order: no random body names it right
