"""The Nuvemshop order lifecycle in the BlackBox dialect, over real HTTP.

PUT (owner note, buyer data), line edits, cancel flags, the values and edits histories, the
list filters, the order/edited and order/updated events, and the seed's own example URLs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from tests.ordercore.conftest import AUTH, MERCHANT, Hooks, StartCore, checkout, checkout_body

Client = TestClient[Any, Any]


async def call(client: Client, method: str, path: str, body: Any = None, **headers: str) -> Any:
    resp = await client.request(method, path, json=body, headers={**AUTH, **headers})
    return resp.status, await resp.json()


async def new_order(client: Client, **overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = (await checkout(client, checkout_body(**overrides)))["Orders"][0]
    return order


async def subscribe(client: Client, hooks: Hooks, events: list[str]) -> None:
    status, _ = await call(client, "POST", "/api/webhooks", {"Url": hooks.url, "Events": events})
    assert status == 201


async def test_put_sets_the_owner_note_and_the_buyers_data(client: Client, hooks: Hooks) -> None:
    await subscribe(client, hooks, ["order/updated"])
    order = await new_order(client, Note="ring twice")
    oid = order["Id"]
    assert (order["Note"], order["OwnerNote"], order["State"]) == ("ring twice", None, "open")
    status, updated = await call(
        client,
        "PUT",
        f"/api/order/{oid}",
        {
            "OwnerNote": "Need to gift wrap this order",
            "Customer": {"Name": "Maria Silva", "UserId": "someone-else"},
            "Shipping": {"Type": 1, "Address": {"Street": "Rua Doutor Azevedo Sampaio"}},
        },
    )
    assert status == 200
    assert updated["OwnerNote"] == "Need to gift wrap this order"
    assert updated["Customer"]["Name"] == "Maria Silva"
    assert updated["Customer"]["Email"] == order["Customer"]["Email"]  # merged, not replaced
    assert updated["Customer"]["UserId"] == "u-1"  # who sees the order never changes
    assert updated["Shipping"]["Address"]["Street"] == "Rua Doutor Azevedo Sampaio"
    event = await hooks.next()
    assert (event["Event"], event["Order"]["OwnerNote"]) == ("order/updated", updated["OwnerNote"])
    # the same PUT again changes nothing: no history, no event
    status, again = await call(
        client, "PUT", f"/api/order/{oid}", {"OwnerNote": updated["OwnerNote"]}
    )
    assert (status, again["UpdatedOn"]) == (200, updated["UpdatedOn"])
    _, history = await call(client, "GET", f"/api/order/{oid}/history")
    changed = [(h["Action"], h["Field"]) for h in history if h["Action"] == "update"]
    assert changed == [("update", "OwnerNote"), ("update", "Customer"), ("update", "Shipping")]
    assert history[-3]["To"] == "Need to gift wrap this order"
    assert history[-2]["From"]["Name"] == "Comprador"
    assert history[-2]["To"]["Name"] == "Maria Silva"
    # null: clears what may be empty, is refused where the order needs a value
    for bad in ({"Customer": None}, {"Customer": {"Name": None}}, {"Customer": {"Email": None}}):
        status, err = await call(client, "PUT", f"/api/order/{oid}", bad)
        assert (status, err["Error"]) == (400, "validation_error"), bad
    status, cleared = await call(
        client, "PUT", f"/api/order/{oid}", {"Shipping": None, "Customer": {"LegalId": None}}
    )
    assert (status, cleared["Shipping"], cleared["Customer"]["LegalId"]) == (200, None, None)
    # after shipping, the note may still change, the buyer's data may not
    assert (await call(client, "POST", f"/api/order/{oid}/ship"))[0] == 200
    status, err = await call(client, "PUT", f"/api/order/{oid}", {"Customer": {"Name": "X"}})
    assert (status, err["Error"]) == (409, "illegal_transition")
    status, shipped = await call(client, "PUT", f"/api/order/{oid}", {"OwnerNote": None})
    assert (status, shipped["OwnerNote"]) == (200, None)
    status, err = await call(client, "PUT", f"/api/order/{oid}", {"OwnerNote": 5})
    assert (status, err["Fields"][0]["Field"]) == (400, "OwnerNote")
    assert (await call(client, "PUT", "/api/order/999", {}))[0] == 404


async def test_an_edit_changes_lines_total_and_both_histories(client: Client, hooks: Hooks) -> None:
    await subscribe(client, hooks, ["order/edited"])
    order = await new_order(client)  # 2 x COFFEE-1KG at 8990
    oid, line = order["Id"], order["OrderItems"][0]["Id"]
    edit = {
        "Lines": [{"Id": line, "Quantity": 1}],
        "Add": [{"Sku": "TEA-250G", "Quantity": 2}],
        "Reason": "the buyer called",
    }
    status, edited = await call(client, "POST", f"/api/order/{oid}/edit", edit)
    assert status == 200
    assert edited["Amount"] == 8990 + 2 * 2450
    assert [(i["Sku"], i["Quantity"], i["Amount"]) for i in edited["OrderItems"]] == [
        ("COFFEE-1KG", 1, 8990),
        ("TEA-250G", 2, 4900),
    ]
    event = await hooks.next()
    assert (event["Event"], event["Order"]["Amount"]) == ("order/edited", edited["Amount"])
    _, edits = await call(client, "GET", f"/api/order/{oid}/history/edits")
    [entry] = edits
    assert entry["Reason"] == "the buyer called"
    assert entry["ProductChanges"] == [
        {
            "Type": "REMOVE",
            "ModifiedStock": False,
            "PreviousQuantity": 2,
            "NewQuantity": 1,
            "ProductName": "Coffee beans, 1 kg",
        },
        {
            "Type": "ADD",
            "ModifiedStock": False,
            "PreviousQuantity": 0,
            "NewQuantity": 2,
            "ProductName": "Black tea, 250 g",
        },
    ]
    assert entry["TransactionInformation"]["TotalDelta"] == 13890 - 17980
    assert entry["TransactionInformation"]["Status"] == "PENDING"
    # paying settles the newest value entry; the superseded one was cancelled
    status, paid = await call(client, "POST", f"/api/order/{oid}/capture", {"GatewayMethod": "pix"})
    assert (status, paid["PaidOn"] is not None) == (200, True)
    _, values = await call(client, "GET", f"/api/order/{oid}/history/values")
    assert [(v["Status"], v["TotalDelta"], v["TotalPaidDiff"]) for v in values] == [
        ("CANCELLED", 17980, 0),
        ("PAID", -4090, 13890),
    ]
    assert values[1]["GatewayMethod"] == "pix"
    assert values[0]["ClosedOn"] == entry["HappenedOn"]
    _, edits = await call(client, "GET", f"/api/order/{oid}/history/edits")
    assert edits[0]["TransactionInformation"]["Status"] == "PAID"  # as it is now
    # a paid order's lines no longer change
    status, err = await call(client, "POST", f"/api/order/{oid}/edit", edit)
    assert (status, err["Error"], err["Status"]["Code"]) == (409, "illegal_transition", 2)


async def test_edits_the_catalog_or_the_order_refuse(client: Client) -> None:
    order = await new_order(client)
    oid, line = order["Id"], order["OrderItems"][0]["Id"]
    for body, field in (
        ({"Lines": [{"Id": 999, "Quantity": 1}]}, "Lines[0].Id"),
        ({"Lines": [{"Id": line, "Quantity": 1}, {"Id": line, "Quantity": 3}]}, "Lines[1].Id"),
        ({"Add": [{"Sku": "NOPE", "Quantity": 1}]}, "Add[0].Sku"),
        ({"Lines": [{"Id": line, "Quantity": 0}]}, "Lines"),
    ):
        status, err = await call(client, "POST", f"/api/order/{oid}/edit", body)
        assert (status, err["Error"]) == (422, "unprocessable"), body
        assert err["Fields"][0]["Field"] == field
    status, err = await call(client, "POST", f"/api/order/{oid}/edit", {"Add": [{"Quantity": 1}]})
    assert (status, err["Fields"][0]["Field"]) == (400, "Add[0]")
    status, same = await call(client, "POST", f"/api/order/{oid}/edit", {"Lines": []})
    assert (status, same["Amount"]) == (200, order["Amount"])  # nothing to change
    _, edits = await call(client, "GET", f"/api/order/{oid}/history/edits")
    assert edits == []


async def test_a_retried_edit_with_its_key_is_applied_once(client: Client) -> None:
    order = await new_order(client)
    oid = order["Id"]
    add = {"Add": [{"Sku": "WATER-5L", "Quantity": 1}]}
    first = await call(client, "POST", f"/api/order/{oid}/edit", add, **{"Idempotency-Key": "e1"})
    again = await call(client, "POST", f"/api/order/{oid}/edit", add, **{"Idempotency-Key": "e1"})
    assert first == again
    assert first[1]["Amount"] == order["Amount"] + 990
    _, edits = await call(client, "GET", f"/api/order/{oid}/history/edits")
    assert len(edits) == 1


async def test_cancel_records_reason_restock_and_notify(client: Client, hooks: Hooks) -> None:
    await subscribe(client, hooks, ["order/cancelled"])
    oid = (await new_order(client))["Id"]
    body = {"Reason": "inventory", "Restock": False, "NotifyCustomer": False}
    status, order = await call(client, "POST", f"/api/order/{oid}/cancel", body)
    assert status == 200
    assert (order["State"], order["CancelReason"]) == ("cancelled", "inventory")
    assert (order["CancelRestock"], order["CancelNotifyCustomer"]) == (False, False)
    event = await hooks.next()
    assert (event["Order"]["CancelRestock"], event["Order"]["CancelNotifyCustomer"]) == (
        False,
        False,
    )
    _, values = await call(client, "GET", f"/api/order/{oid}/history/values")
    assert [(v["Status"], v["TotalPaidDiff"]) for v in values] == [("CANCELLED", 0)]
    status, err = await call(client, "POST", f"/api/order/{oid}/cancel", {"Restock": "yes"})
    assert (status, err["Fields"][0]["Field"]) == (400, "Restock")


async def test_values_history_of_a_refund_and_of_cash_on_delivery(client: Client) -> None:
    paid = (await new_order(client))["Id"]
    await call(client, "POST", f"/api/order/{paid}/capture")
    await call(client, "POST", f"/api/order/{paid}/cancel", {"Reason": "customer"})
    _, values = await call(client, "GET", f"/api/order/{paid}/history/values")
    assert [(v["Status"], v["TotalDelta"], v["TotalPaidDiff"]) for v in values] == [
        ("PAID", 17980, 17980),
        ("PAID", -17980, -17980),  # the merchant paid it back
    ]
    cod = (await new_order(client))["Id"]
    await call(client, "POST", f"/api/order/{cod}/ship")
    status, done = await call(client, "POST", f"/api/order/{cod}/complete")
    assert (status, done["PaidOn"] is not None) == (200, True)
    _, values = await call(client, "GET", f"/api/order/{cod}/history/values")
    assert [(v["Status"], v["GatewayMethod"]) for v in values] == [("PAID", "cash")]
    denied = (await new_order(client))["Id"]
    await call(client, "POST", f"/api/order/{denied}/deny")
    _, values = await call(client, "GET", f"/api/order/{denied}/history/values")
    assert [v["Status"] for v in values] == ["CANCELLED"]
    status, err = await call(
        client, "POST", f"/api/order/{denied}/capture", {"GatewayMethod": "barter"}
    )
    assert (status, err["Fields"][0]["Field"]) == (400, "GatewayMethod")  # before the state


async def test_list_filters_of_the_nuvemshop_lifecycle(start_core: StartCore) -> None:
    now = [datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()]
    client = await start_core(clock=lambda: now[0])
    ids = []
    for name, quantity in (("Maria Silva", 1), ("John Doe", 2), ("Ana 100%", 3), ("Zed", 4)):
        customer = {**checkout_body()["Customer"], "Name": name}
        items = [{"Sku": "WATER-5L", "Quantity": quantity}]
        ids.append((await new_order(client, Customer=customer, Items=items))["Id"])
        now[0] += 86400
    await call(client, "POST", f"/api/order/{ids[0]}/close")
    await call(client, "POST", f"/api/order/{ids[1]}/cancel")
    await call(client, "PUT", f"/api/order/{ids[3]}", {"OwnerNote": "late"})

    async def listed(query: str) -> list[int]:
        status, page = await call(client, "GET", f"/api/order/received?{query}")
        assert status == 200, page
        return [o["Id"] for o in page["Data"]]

    assert await listed("state=open") == ids[2:]
    assert await listed("state=closed") == [ids[0]]
    assert await listed("state=cancelled") == [ids[1]]
    assert await listed("state=any") == ids
    assert await listed(f"sinceId={ids[1]}") == ids[2:]
    assert await listed("q=silva") == [ids[0]]
    assert await listed("q=100%25") == [ids[2]]  # % is text, not a wildcard
    assert await listed("q=_") == []
    assert await listed(f"q={ids[3]}") == [ids[3]]
    assert await listed("minAmount=1980&maxAmount=2970") == ids[1:3]
    # close, cancel and PUT ran on the 5th; the third order was last changed when created
    assert await listed("updatedStartDate=05-06-2026") == [ids[0], ids[1], ids[3]]
    assert await listed("updatedEndDate=04-06-2026") == [ids[2]]
    assert await listed("startDate=03-06-2026&endDate=01-06-2026") == []


async def test_the_seeds_example_urls_answer(client: Client) -> None:
    order = await new_order(client)
    day = datetime.now(UTC).strftime("%d-%m-%Y")
    for url in (
        "/api/order/sent/?pageIndex=1&pageSize=25&status=0&checkout="
        f"{order['CheckoutId']}&order=desc&startDate={day}&endDate={day}",
        f"/api/order/received/?pageIndex=1&pageSize=25&merchantId={MERCHANT}&status=0"
        f"&order=desc&startDate={day}&endDate={day}",
    ):
        status, page = await call(client, "GET", url)
        assert status == 200, url
        assert [o["Id"] for o in page["Data"]] == [order["Id"]]


async def test_the_payment_method_id_is_the_clients_else_the_checkout(client: Client) -> None:
    payment = {"Id": 500, "Type": 0, "Data": {"Brand": "visa"}}
    given = await new_order(client, PaymentMethod=payment)
    assert given["PaymentMethod"]["Id"] == 500
    assert given["CheckoutId"] != 500
    default = await new_order(client)  # no Id: one payment per checkout, as in the seed
    assert default["PaymentMethod"]["Id"] == default["CheckoutId"]
    status, err = await call(
        client, "POST", "/api/checkout", checkout_body(PaymentMethod={"Id": "500"})
    )
    assert (status, err["Fields"][0]["Field"]) == (400, "PaymentMethod.Id")
