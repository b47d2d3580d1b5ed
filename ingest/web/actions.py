"""The dashboard's state-changing routes (POST; CSRF already checked by the middleware).

Each action calls the registry or order-outbox function that owns the change (they write the
audit row), then tells the rest of ingest through the bus (``device`` reloads its cache) and
pushes the retained config when the device's desired config changed. A plain form post is
answered with a redirect (or the page, when it must show a secret once); a request that asks
for JSON gets JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import structlog
from aiohttp import web

from edgeorder import protocol as p
from edgeorder.ingest.bus import Notice
from edgeorder.ingest.domain.firmware import DEVICE_CA_NAME, render_agent_toml
from edgeorder.ingest.keys import BUS_KEY, SETTINGS_KEY, SIMULATOR_KEY
from edgeorder.ingest.orders import outbox
from edgeorder.ingest.orders.catalog import CatalogUnavailableError, SkuError
from edgeorder.ingest.store import audit, groups, registry
from edgeorder.ingest.store.bulk import BulkError, BulkRequest, apply_bulk
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.web import forms, provisioning, sku_picker, views
from edgeorder.ingest.web.access import identity_of, see_other
from edgeorder.ingest.web.announce import announce, announce_bulk
from edgeorder.ingest.web.markup import Markup, esc, join
from edgeorder.ingest.web.pages import device_page, page, simulated_ids
from edgeorder.ingest.web.state import STORE_KEY

__all__ = ["install"]

log = structlog.get_logger("edgeorder.ingest.web.actions")


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _done(request: web.Request, location: str, **payload: Any) -> web.Response:
    if _wants_json(request):
        return web.json_response({"ok": True, **payload})
    return see_other(location)


def _notify_outbox(request: web.Request) -> None:
    bus = request.app.get(BUS_KEY)
    if bus is not None:
        bus.publish(Notice("outbox", None, {"source": "dashboard"}))


async def _registry(request: web.Request, fn: Callable[[Conn], Any], *, write: bool = True) -> Any:
    """Run a registry mutation as a job of the service's writer (a read on its reader pool);
    unknown device -> 404, bad value -> 400."""
    store = request.app[STORE_KEY]
    try:
        return await (store.write(fn) if write else store.read(fn))
    except registry.UnknownDeviceError as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from exc
    except registry.RegistryError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from exc


def _device_id(request: web.Request) -> str:
    return request.match_info["device_id"]


async def press(request: web.Request) -> web.Response:
    device_id, form = _device_id(request), await request.post()
    click = str(form.get("click", "single"))
    if click not in forms.CLICKS:
        raise web.HTTPBadRequest(text=f"click must be one of {', '.join(forms.CLICKS)}\n")
    simulator = request.app.get(SIMULATOR_KEY)
    if simulator is None or device_id not in simulated_ids(request.app):
        raise web.HTTPNotFound(text=f"{device_id!r} is not a simulated device\n")
    actor = identity_of(request).actor
    simulator.press(device_id, click)
    log.info("simulated_press", device_id=device_id, click=click, actor=actor)
    at = p.format_ts(p.utcnow())
    await request.app[STORE_KEY].write(
        partial(
            audit.record,
            at=at,
            actor=actor,
            action="device.press",
            device_id=device_id,
            detail=click,
        )
    )
    return _done(request, views.device_url(device_id), device_id=device_id, click=click)


async def set_enabled(request: web.Request) -> web.Response:
    device_id, form = _device_id(request), await request.post()
    if form.get("enabled") not in ("0", "1"):  # a checkbox's "on" must not disable the device
        raise web.HTTPBadRequest(text="enabled must be 0 or 1\n")
    enabled = form.get("enabled") == "1"
    actor = identity_of(request).actor
    await _registry(request, lambda db: registry.set_enabled(db, device_id, enabled, actor=actor))
    await announce(request, (device_id,), source="dashboard")
    return _done(request, views.device_url(device_id), enabled=enabled)


async def set_env(request: web.Request) -> web.Response:
    device_id, form = _device_id(request), await request.post()
    env = form.get("env")
    if env not in ("dev", "prod"):
        raise web.HTTPBadRequest(text="env must be dev or prod\n")
    value: Literal["dev", "prod"] = "dev" if env == "dev" else "prod"
    actor = identity_of(request).actor
    await _registry(request, lambda db: registry.set_env(db, device_id, value, actor=actor))
    await announce(request, (device_id,), source="dashboard", config_changed=(device_id,))
    return _done(request, views.device_url(device_id), env=value)


async def set_mapping(request: web.Request) -> web.Response:
    device_id, form = _device_id(request), await request.post()
    current = await _registry(request, lambda db: registry.get_device(db, device_id), write=False)
    try:
        mapping = forms.parse_mapping(form, sensors=current["mapping"].get("sensors"))
        await sku_picker.check(request, mapping, form)
    except (forms.FormError, SkuError) as exc:
        log.info("mapping_refused", device_id=device_id, reason=str(exc))
        if _wants_json(request):
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return await device_page(request, notice=f"Mapping not saved: {exc}", status=400)
    actor = identity_of(request).actor
    await _registry(
        request, lambda db: registry.update_mapping(db, device_id, mapping, actor=actor)
    )
    await announce(request, (device_id,), source="dashboard", config_changed=(device_id,))
    return _done(request, views.device_url(device_id), mapping=mapping.model_dump(mode="json"))


async def set_groups(request: web.Request) -> web.Response:
    """The device's tags (separated by spaces or commas) and site, from its page."""
    device_id, form = _device_id(request), await request.post()
    tags = str(form.get("tags", "")).replace(",", " ").split()
    site = str(form.get("site", ""))
    actor = identity_of(request).actor

    def change(db: Conn) -> None:
        groups.set_tags(db, device_id, tags, actor=actor)
        groups.set_site(db, device_id, site, actor=actor)

    try:
        await _registry(request, change)
    except web.HTTPBadRequest as exc:
        log.info("groups_refused", device_id=device_id, reason=exc.text)
        if _wants_json(request):
            return web.json_response({"ok": False, "error": (exc.text or "").strip()}, status=400)
        notice = f"Tags and site not saved: {(exc.text or '').strip()}"
        return await device_page(request, notice=notice, status=400)
    await announce(request, (device_id,), source="dashboard")
    return _done(request, views.device_url(device_id), tags=sorted(set(tags)), site=site.strip())


_BULK = {
    "enable": ("enable", None),
    "disable": ("disable", None),
    "env_dev": ("set_env", "dev"),
    "env_prod": ("set_env", "prod"),
    "add_tag": ("add_tag", None),
    "remove_tag": ("remove_tag", None),
}


def _back(form: Any) -> str:
    """The fleet URL the bulk form came from (only the fleet page: never elsewhere)."""
    back = str(form.get("back", "/"))
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in back):  # no header may carry them
        return "/"
    return back if back == "/" or back.startswith("/?") else "/"


async def bulk_action(request: web.Request) -> web.Response:
    """One action for every device ticked on the fleet page: all of them, or none (the
    page then says why each failing device failed)."""
    form = await request.post()
    chosen = _BULK.get(str(form.get("action", "")))
    ids = tuple(str(v) for v in form.getall("device", []))
    tag = str(form.get("tag", "")).strip() or None
    actor = identity_of(request).actor
    try:
        if chosen is None:
            raise registry.RegistryError(f"action must be one of {', '.join(_BULK)}")
        env = chosen[1]
        req = BulkRequest(
            chosen[0],  # type: ignore[arg-type]
            ids,
            env="dev" if env == "dev" else "prod" if env else None,
            tag=tag,
        )
        done = await request.app[STORE_KEY].write(lambda db: apply_bulk(db, req, actor=actor))
    except registry.RegistryError as exc:
        errors = exc.errors if isinstance(exc, BulkError) else {}
        log.info("bulk_refused", devices=len(ids), reason=str(exc))
        if _wants_json(request):
            body = {"ok": False, "error": str(exc), "devices": errors}
            return web.json_response(body, status=400)
        return _bulk_refused(request, str(exc), errors)
    await announce_bulk(request, done, source="dashboard")
    log.info("bulk_done", action=req.detail, devices=len(done.changed), actor=actor)
    back = _back(form)
    if _wants_json(request):
        return web.json_response({"ok": True, "action": req.detail, "changed": done.changed})
    sep = "&" if "?" in back else "?"
    return see_other(f"{back}{sep}bulk={len(done.changed)}")


def _bulk_refused(request: web.Request, message: str, errors: dict[str, str]) -> web.Response:
    items = join(
        Markup(f"<li><b>{esc(device)}</b>: {esc(why)}</li>") for device, why in errors.items()
    )
    body = Markup(
        f'<p class="error" role="alert" id="bulk-error">Nothing changed. {esc(message)}</p>'
        f'<ul class="bulk-errors">{items}</ul><p><a href="/">Back to the fleet</a></p>'
    )
    return page(request, "Bulk action refused", body, active="fleet", status=400)


async def rotate(request: web.Request) -> web.Response:
    device_id, actor = _device_id(request), identity_of(request).actor
    password: str = await _registry(
        request, lambda db: registry.rotate_credentials(db, device_id, actor=actor)
    )
    await announce(request, (device_id,), source="dashboard")
    log.info("credentials_rotated", device_id=device_id, actor=actor)
    if _wants_json(request):
        return web.json_response({"ok": True, "device_id": device_id, "password": password})
    notice = "Credentials rotated: update the device's config file."
    if not request.app[SETTINGS_KEY].broker_reads_registry:
        notice += " The broker accepts the new password after broker-auth --reload."
    return await device_page(request, secret=password, notice=notice)


async def provision(request: web.Request) -> web.Response:
    form = await request.post()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    device_id, name = fields.get("device_id", "").strip(), fields.get("name", "").strip()
    env_field = fields.get("env", "prod")  # the form's first choice; a typo is refused below
    env: Literal["dev", "prod"] = "dev" if env_field == "dev" else "prod"
    actor = identity_of(request).actor
    # Read first: a CA that cannot be handed out stops provisioning before the device exists
    # (its password is shown only once, with a config that must work).
    broker = await provisioning.load_broker_view(request)
    try:
        if broker.ca_problem:
            raise provisioning.ProvisioningUnavailable(f"the broker's CA: {broker.ca_problem}")
        if env_field not in ("dev", "prod"):  # "DEV" must not make a device of real orders
            raise forms.FormError(f"env must be dev or prod, not {env_field[:20]!r}")
        mapping = forms.parse_mapping(form)
        await sku_picker.check(request, mapping, form)
        row, password = await request.app[STORE_KEY].write(
            lambda db: registry.add_device(
                db, device_id, name=name, mapping=mapping, env=env, actor=actor
            )
        )
    except (
        forms.FormError,
        SkuError,
        registry.RegistryError,
        provisioning.ProvisioningUnavailable,
    ) as exc:
        log.info("provision_refused", device_id=device_id, reason=str(exc))
        csrf = identity_of(request).csrf_token or ""
        status = 400
        if isinstance(exc, registry.DeviceExistsError):
            status = 409
        elif isinstance(exc, (provisioning.ProvisioningUnavailable, CatalogUnavailableError)):
            status = 503
        return page(
            request,
            "Provisioning",
            views.provision_body(
                csrf, error=str(exc), form=fields, picker=await sku_picker.picker_of(request)
            ),
            active="provision",
            status=status,
        )
    await announce(request, (device_id,), source="dashboard", config_changed=(device_id,))
    broker = await provisioning.load_broker_view(request)  # counts this change too
    # As devices reach the broker (device_mqtt_url), with the CA beside the TOML: never
    # ingest's own loopback URL, which no Pi reaches.
    toml = render_agent_toml(
        device_id,
        mqtt_url=broker.device_url,
        password=password,
        ca_file=DEVICE_CA_NAME if broker.ca_pem is not None else None,
    )
    if _wants_json(request):
        payload = {"device": row, "password": password, "firmware_config": toml}
        return web.json_response(
            {
                "ok": True,
                **payload,
                "ca_certificate": broker.ca_pem,
                "broker_pending": broker.pending,
            }
        )
    return page(
        request,
        f"Device {device_id} added",
        _credentials(device_id, password, toml, broker),
        active="provision",
    )


def _credentials(
    device_id: str, password: str, toml: str, broker: provisioning.BrokerView
) -> Markup:
    href = "data:application/toml;base64," + base64.b64encode(toml.encode()).decode()
    ca = provisioning.ca_download(broker)
    beside = (
        f" Put both files in <code>/etc/edgeorder/</code> on the device ({DEVICE_CA_NAME} "
        "beside the config)."
        if broker.ca_pem is not None
        else ""
    )
    return Markup(
        f"{provisioning.broker_notice(broker)}"
        '<div class="secret card" role="alert"><p><b>Shown once.</b> Copy the password or '
        f"download the config file now: only its hash is stored.{beside}</p>"
        f"<dl><dt>MQTT username</dt><dd><code>{esc(device_id)}</code></dd>"
        f'<dt>MQTT password</dt><dd><code id="new-password">{esc(password)}</code></dd></dl>'
        f'<p><a class="button" id="toml-download" download="{esc(device_id)}.toml" '
        f'href="{esc(href)}">Download firmware config ({esc(device_id)}.toml)</a> {ca}</p>'
        f"<pre>{esc(toml)}</pre></div>"
        f'<p><a href="{esc(views.device_url(device_id))}">Go to the device page</a></p>'
    )


async def _outbox_action(request: web.Request, name: Literal["retry", "discard"]) -> web.Response:
    raw_id = request.match_info["outbox_id"]
    if len(raw_id) > 18:  # beyond SQLite's 64-bit integers: no such row
        raise web.HTTPNotFound(text=f"order #{raw_id} is not waiting in the buffer\n")
    outbox_id = int(raw_id)
    actor = identity_of(request).actor
    fn = outbox.retry_now if name == "retry" else outbox.discard
    changed = await request.app[STORE_KEY].write(lambda db: fn(db, outbox_id, actor=actor))
    if not changed:
        log.info("outbox_action_refused", action=name, outbox_id=outbox_id, reason="not pending")
        raise web.HTTPNotFound(text=f"order #{outbox_id} is not waiting in the buffer\n")
    # "outbox" wakes the worker (retry) and refreshes every open page.
    _notify_outbox(request)
    log.info("outbox_" + name, outbox_id=outbox_id, actor=actor)
    if _wants_json(request):
        return web.json_response({"ok": True, "id": outbox_id, "action": name})
    return see_other(f"/buffer?{name}={outbox_id}")  # a reload never repeats the action


async def retry_now(request: web.Request) -> web.Response:
    return await _outbox_action(request, "retry")


async def discard(request: web.Request) -> web.Response:
    return await _outbox_action(request, "discard")


def install(app: web.Application) -> None:
    app.router.add_post("/devices/bulk", bulk_action)  # before the per-device routes
    app.router.add_post("/devices/{device_id}/groups", set_groups)
    app.router.add_post("/devices/{device_id}/press", press)
    app.router.add_post("/devices/{device_id}/enabled", set_enabled)
    app.router.add_post("/devices/{device_id}/env", set_env)
    app.router.add_post("/devices/{device_id}/mapping", set_mapping)
    app.router.add_post("/devices/{device_id}/rotate", rotate)
    app.router.add_post("/provision", provision)
    app.router.add_post(r"/buffer/{outbox_id:\d+}/retry", retry_now)
    app.router.add_post(r"/buffer/{outbox_id:\d+}/discard", discard)
