"""The SKU picker of the mapping forms (device page, provisioning): the platform's catalog
as a ``<datalist>`` the SKU inputs offer (plain text inputs still, so the page works without
JavaScript and with a platform that has no catalog), a line saying where the SKUs come from,
and the "allow an unknown SKU" checkbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from edgeorder import protocol as p
from edgeorder.ingest.keys import CATALOG_KEY
from edgeorder.ingest.orders.catalog import CatalogView, SkuError
from edgeorder.ingest.web.markup import Markup, esc, join

__all__ = ["ALLOW_FIELD", "DATALIST_ID", "check", "picker", "picker_of"]

DATALIST_ID = "catalog-skus"
ALLOW_FIELD = "allow_unknown_sku"


def _status(view: CatalogView) -> Markup:
    if not view.has_catalog:
        return Markup(
            f'<p class="muted" id="catalog-status">{esc(view.platform)} has no catalog: '
            "any SKU is saved, unchecked.</p>"
        )
    if view.items is None:
        return Markup(
            f'<p class="error" role="alert" id="catalog-status">The catalog of '
            f"{esc(view.platform)} cannot be read now ({esc(view.error or 'no answer')}): "
            "a SKU is refused unless you allow an unknown SKU below.</p>"
        )
    return Markup(
        f'<p class="muted" id="catalog-status">{len(view.items)} SKUs from '
        f"{esc(view.source or view.platform)}; another SKU is refused.</p>"
    )


def picker(view: CatalogView) -> Markup:
    """What goes inside a mapping form, before its submit button."""
    options = join(
        Markup(f'<option value="{esc(i.sku)}">{esc(i.label)}</option>') for i in view.items or ()
    )
    return Markup(
        f'{_status(view)}<datalist id="{DATALIST_ID}">{options}</datalist>'
        f'<label class="check"><input type="checkbox" name="{ALLOW_FIELD}" value="1"> '
        "Allow a SKU the catalog lacks (or cannot check now)</label>"
    )


async def picker_of(request: web.Request) -> Markup | None:
    """The picker for the app's platform (None in an app without a catalog)."""
    catalog = request.app.get(CATALOG_KEY)
    return None if catalog is None else picker(await catalog.view())


async def check(request: web.Request, mapping: p.ButtonMapping, form: Mapping[str, Any]) -> None:
    """``SkuError`` unless the mapping's SKUs may be saved (the form's checkbox allows an
    unknown or unverifiable one)."""
    catalog = request.app.get(CATALOG_KEY)
    if catalog is None:
        return
    try:
        await catalog.check(mapping, allow_unknown=form.get(ALLOW_FIELD) == "1")
    except SkuError as exc:
        raise exc.hinted('tick "Allow a SKU the catalog lacks" to save it unchecked') from None
