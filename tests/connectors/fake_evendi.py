"""e-vendi's closeOrder as the seed describes it: JSON body, 200/400/405/415."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tests.connectors.fakes import BODY, FakePlatform

TOKEN = "evendi-integration-token"
ORG = "1001"
ATTRIBUTES = ("env", "integrationToken", "organizationExternalId", "orderId")


@dataclass
class FakeEvendi(FakePlatform):
    open_orders: set[str] = field(default_factory=lambda: {"PED-7", "PED-8"})
    closed: dict[str, str] = field(default_factory=dict)
    """orderId -> env it was closed in."""

    async def serve(self) -> None:
        await self.start([web.post("/api/closeOrder", self.close_order)])

    async def close_order(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.json_response({"message": "Unsupported Media Type"}, status=415)
        body = request[BODY]
        if not isinstance(body, dict) or any(not body.get(k) for k in ATTRIBUTES):
            return web.json_response({"message": "atributos obrigatórios ausentes"}, status=400)
        if body["env"] not in ("dev", "prod"):
            return web.json_response({"message": "env inválido"}, status=400)
        if body["integrationToken"] != TOKEN or body["organizationExternalId"] != ORG:
            return web.json_response({"message": "token ou organização inválidos"}, status=400)
        order_id = body["orderId"]
        if order_id not in self.open_orders and order_id not in self.closed:
            return web.json_response({"success": False})
        self.open_orders.discard(order_id)
        self.closed.setdefault(order_id, body["env"])
        return web.json_response({"success": True})
