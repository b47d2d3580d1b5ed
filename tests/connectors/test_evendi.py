"""e-vendi connector against a real HTTP server as strict as the closeOrder seed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ulid import ULID

from edgeorder.ingest.connectors.base import OrderRequest, PermanentError, TransientError
from edgeorder.ingest.connectors.common import ConnectorOptionsError
from edgeorder.ingest.connectors.evendi import EvendiConnector, answer_of
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.protocol import State
from tests.connectors.fake_evendi import ORG, TOKEN, FakeEvendi
from tests.connectors.support import making
from tests.support.net import free_port

OPTIONS: dict[str, Any] = {"organization_external_id": ORG}


def close(
    order_id: str | None = "PED-7", *, test: bool = False, may_exist: bool = False
) -> OrderRequest:
    return OrderRequest(
        idempotency_key=str(ULID()),
        device_id="dev-1",
        sku="COFFEE-1KG",
        quantity=1,
        test=test,
        order_id=order_id,
        may_exist=may_exist,
    )


Make = Callable[..., EvendiConnector]


@pytest.fixture
async def make(evendi: FakeEvendi) -> AsyncIterator[Make]:
    async with making(
        EvendiConnector, "evendi", base_url=evendi.url, token=TOKEN, options=OPTIONS
    ) as build:
        yield build


async def test_close_sends_every_seed_attribute_and_settles(evendi: FakeEvendi, make: Make) -> None:
    result = await make().create_order(close())

    assert (result.order_id, result.state, result.platform_status) == (
        "PED-7",
        State.ORDERED,
        "closed",
    )
    assert result.settled is True
    [call] = evendi.seen
    assert (call.method, call.path) == ("POST", "/api/closeOrder")
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.body == {
        "env": "Prod",
        "integrationToken": TOKEN,
        "organizationExternalId": ORG,
        "orderId": "PED-7",
    }
    assert evendi.closed == {"PED-7": "Prod"}


async def test_env_follows_the_seed_table_by_default_and_is_configurable(
    evendi: FakeEvendi, make: Make
) -> None:
    await make().create_order(close("PED-7", test=True))
    await make(options={"env": "dev"}).create_order(close("PED-8"))
    await make(options={"env_names": {"dev": "dev"}}).create_order(close("PED-9", test=True))
    assert evendi.closed == {"PED-7": "Dev", "PED-8": "Dev", "PED-9": "dev"}


async def test_an_env_spelling_the_seed_never_shows_is_refused(make: Make) -> None:
    with pytest.raises(PermanentError, match="invalid syntax") as err:
        await make(options={"env_names": {"prod": "prod"}}).create_order(close())
    assert err.value.status == 400


async def test_the_seeds_text_answer_counts_as_success(evendi: FakeEvendi, make: Make) -> None:
    evendi.text_answers = True
    assert (await make().create_order(close())).settled


async def test_a_refused_first_close_is_permanent(evendi: FakeEvendi, make: Make) -> None:
    with pytest.raises(PermanentError, match="PED-404 answered success: false"):
        await make().create_order(close("PED-404"))
    assert evendi.closed == {}


async def test_after_a_lost_reply_the_retry_takes_success_false_as_that_close(
    evendi: FakeEvendi, make: Make
) -> None:
    evendi.lose("POST", "/api/closeOrder")
    conn = make()
    first = close("PED-7")
    with pytest.raises(TransientError, match="unreachable"):
        await conn.create_order(first)
    assert evendi.closes == ["PED-7"]  # e-vendi did it; we could not know
    retry = OrderRequest(**{**first.__dict__, "may_exist": True})
    result = await conn.create_order(retry)
    assert (result.order_id, result.settled) == ("PED-7", True)
    assert evendi.closes == ["PED-7"]  # and it was never closed twice


async def test_a_wrong_token_is_a_permanent_400_with_the_seeds_meaning(make: Make) -> None:
    with pytest.raises(PermanentError) as err:
        await make(token="stolen").create_order(close())
    assert err.value.status == 400
    assert "invalid syntax" in err.value.reason


@pytest.mark.parametrize(("status", "meaning"), [(405, "wrong HTTP method"), (415, "Content-Type")])
async def test_seed_error_codes_keep_their_meaning(
    evendi: FakeEvendi, make: Make, status: int, meaning: str
) -> None:
    evendi.forced.append((status, ""))
    with pytest.raises(PermanentError, match=meaning) as err:
        await make().create_order(close())
    assert err.value.status == status


async def test_5xx_timeout_and_refused_are_transient(evendi: FakeEvendi, make: Make) -> None:
    evendi.forced.append((503, {"message": "manutenção"}))
    with pytest.raises(TransientError, match="manutenção"):
        await make().create_order(close())
    evendi.stall_next = True
    with pytest.raises(TransientError, match="timeout"):
        await make(timeout_s=0.3).create_order(close())
    with pytest.raises(TransientError, match="unreachable"):
        await make(base_url=f"http://127.0.0.1:{free_port()}").create_order(close())
    assert evendi.closed == {}


async def test_no_assigned_order_is_permanent_before_any_call(
    evendi: FakeEvendi, make: Make
) -> None:
    with pytest.raises(PermanentError, match="no assigned orderId"):
        await make().create_order(close(None))
    assert evendi.seen == []


async def test_cancel_and_read_are_not_in_the_api(evendi: FakeEvendi, make: Make) -> None:
    conn = make()
    with pytest.raises(PermanentError, match="no cancel method"):
        await conn.cancel_order("PED-7", idempotency_key=str(ULID()))
    with pytest.raises(PermanentError, match="no method to read"):
        await conn.get_order("PED-7")
    assert evendi.seen == []


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"success": True}, "closed"),
        ({"success": False}, "refused"),
        ("success", "closed"),
        (" Success\n", "closed"),
        ("false", "refused"),
        (True, "closed"),
        (False, "refused"),
        ({}, "unknown"),
        ({"success": "yes"}, "unknown"),
        ("error", "unknown"),
        (None, "unknown"),
    ],
)
def test_success_answer_shapes(body: Any, answer: str) -> None:
    assert answer_of(body) == answer


async def test_an_unexpected_200_is_permanent_not_a_close(evendi: FakeEvendi, make: Make) -> None:
    evendi.forced.append((200, "<html>maintenance</html>"))
    with pytest.raises(PermanentError, match="unexpected answer"):
        await make().create_order(close(may_exist=True))


def test_bad_options_list_every_field() -> None:
    with pytest.raises(ConnectorOptionsError) as err:
        EvendiConnector(
            ConnectorSettings(kind="evendi", options={"env": "staging", "env_names": {"dev": ""}})
        )
    names = {p.split(":")[0] for p in err.value.problems}
    assert names == {"organization_external_id", "env", "env_names.dev"}


def test_the_old_static_order_ids_say_what_replaced_them() -> None:
    with pytest.raises(ConnectorOptionsError, match="edgeorder evendi assign"):
        EvendiConnector(
            ConnectorSettings(
                kind="evendi", options={"organization_external_id": ORG, "order_ids": {"A": "1"}}
            )
        )
