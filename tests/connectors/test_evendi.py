"""e-vendi connector against a real HTTP server speaking the closeOrder seed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ulid import ULID

from edgeorder.ingest.connectors.base import OrderRequest, PermanentError, TransientError
from edgeorder.ingest.connectors.common import ConnectorOptionsError
from edgeorder.ingest.connectors.evendi import EvendiConnector, succeeded
from edgeorder.ingest.settings import ConnectorSettings
from edgeorder.protocol import State
from tests.connectors.fake_evendi import ORG, TOKEN, FakeEvendi
from tests.support.net import free_port

OPTIONS: dict[str, Any] = {
    "organization_external_id": ORG,
    "order_ids": {"COFFEE-1KG": "PED-7", "dev-2/COFFEE-1KG": "PED-8", "TEA": "PED-404"},
}


def order(sku: str = "COFFEE-1KG", *, device: str = "dev-1", test: bool = False) -> OrderRequest:
    return OrderRequest(
        idempotency_key=str(ULID()), device_id=device, sku=sku, quantity=1, test=test
    )


Make = Callable[..., EvendiConnector]


@pytest.fixture
async def make(evendi: FakeEvendi) -> AsyncIterator[Make]:
    made: list[EvendiConnector] = []

    def build(**over: Any) -> EvendiConnector:
        settings = ConnectorSettings(
            kind="evendi",
            base_url=over.pop("base_url", evendi.url),
            token=over.pop("token", TOKEN),
            timeout_s=over.pop("timeout_s", 2.0),
            options={**OPTIONS, **over.pop("options", {})},
        )
        made.append(EvendiConnector(settings))
        return made[-1]

    yield build
    for conn in made:
        await conn.close()


async def test_close_order_sends_every_seed_attribute(evendi: FakeEvendi, make: Make) -> None:
    result = await make().create_order(order())

    assert (result.order_id, result.state, result.platform_status) == (
        "PED-7",
        State.ORDERED,
        "closed",
    )
    [call] = evendi.seen
    assert (call.method, call.path) == ("POST", "/api/closeOrder")
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.body == {
        "env": "prod",
        "integrationToken": TOKEN,
        "organizationExternalId": ORG,
        "orderId": "PED-7",
    }
    assert evendi.closed == {"PED-7": "prod"}


async def test_env_follows_device_test_mode_or_the_forced_option(
    evendi: FakeEvendi, make: Make
) -> None:
    await make().create_order(order(test=True))
    await make(options={"env": "dev"}).create_order(order(device="dev-2"))
    assert [c.body["env"] for c in evendi.seen] == ["dev", "dev"]
    assert evendi.closed == {"PED-7": "dev", "PED-8": "dev"}


async def test_device_specific_order_id_wins_over_the_sku_one(
    evendi: FakeEvendi, make: Make
) -> None:
    assert (await make().create_order(order(device="dev-2"))).order_id == "PED-8"


async def test_retry_closes_the_same_order_never_a_second(evendi: FakeEvendi, make: Make) -> None:
    conn = make()
    req = order()
    first = await conn.create_order(req)
    again = await conn.create_order(req)
    assert first.order_id == again.order_id == "PED-7"
    assert {c.body["orderId"] for c in evendi.seen} == {"PED-7"}
    assert evendi.open_orders == {"PED-8"}


async def test_success_false_is_permanent(make: Make) -> None:
    with pytest.raises(PermanentError, match="PED-404"):
        await make().create_order(order("TEA"))


async def test_400_is_permanent_with_the_platform_message(make: Make) -> None:
    with pytest.raises(PermanentError) as err:
        await make(token="stolen").create_order(order())
    assert err.value.status == 400
    assert "invalid syntax" in err.value.reason
    assert "token ou organização inválidos" in err.value.reason


@pytest.mark.parametrize(("status", "meaning"), [(405, "wrong HTTP method"), (415, "Content-Type")])
async def test_seed_error_codes_keep_their_meaning(
    evendi: FakeEvendi, make: Make, status: int, meaning: str
) -> None:
    evendi.forced.append((status, "nope"))
    with pytest.raises(PermanentError, match=meaning) as err:
        await make().create_order(order())
    assert err.value.status == status


async def test_5xx_timeout_and_refused_are_transient(evendi: FakeEvendi, make: Make) -> None:
    evendi.forced.append((503, {"message": "manutenção"}))
    with pytest.raises(TransientError, match="manutenção"):
        await make().create_order(order())
    evendi.stall_next = True
    with pytest.raises(TransientError, match="timeout"):
        await make(timeout_s=0.3).create_order(order())
    with pytest.raises(TransientError, match="unreachable"):
        await make(base_url=f"http://127.0.0.1:{free_port()}").create_order(order())
    assert evendi.closed == {}


async def test_unmapped_sku_is_permanent_before_any_call(evendi: FakeEvendi, make: Make) -> None:
    with pytest.raises(PermanentError, match="no orderId configured"):
        await make().create_order(order("MILK"))
    assert evendi.seen == []


async def test_cancel_and_read_are_not_in_the_api(evendi: FakeEvendi, make: Make) -> None:
    conn = make()
    with pytest.raises(PermanentError, match="no cancel method"):
        await conn.cancel_order("PED-7", idempotency_key=str(ULID()))
    with pytest.raises(PermanentError, match="no method to read"):
        await conn.get_order("PED-7")
    assert evendi.seen == []


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"success": True}, True),
        ({"success": False}, False),
        ("success", True),
        (True, True),
        ({}, False),
        ("error", False),
        (None, False),
    ],
)
def test_success_answer_shapes(body: Any, ok: bool) -> None:
    assert succeeded(body) is ok


def test_bad_options_list_every_field() -> None:
    with pytest.raises(ConnectorOptionsError) as err:
        EvendiConnector(ConnectorSettings(kind="evendi", options={"env": "staging"}))
    names = {p.split(":")[0] for p in err.value.problems}
    assert names == {"organization_external_id", "order_ids", "env"}
