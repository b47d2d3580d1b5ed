"""Pure parsing of dashboard forms into validated values (errors are messages for the page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from edgeorder import protocol as p
from edgeorder.protocol.codec import describe_validation_error

__all__ = ["FormError", "parse_mapping"]

CLICKS = ("single", "double", "long")


class FormError(ValueError):
    """A form value the operator must correct; ``str()`` says which and why."""


def _action(form: Mapping[str, Any], click: str) -> dict[str, Any]:
    kind = str(form.get(f"{click}_type", "none"))
    if kind == "reorder":
        sku = str(form.get(f"{click}_sku", "")).strip()
        if not sku:
            raise FormError(f"{click}: a reorder needs a SKU")
        try:
            quantity = int(str(form.get(f"{click}_quantity", "1")) or "1")
        except ValueError:
            raise FormError(f"{click}: quantity must be a whole number") from None
        return {"type": "reorder", "sku": sku, "quantity": quantity}
    if kind in ("none", "cancel_last"):
        return {"type": kind}
    raise FormError(f"{click}: unknown action {kind!r}")


def parse_mapping(
    form: Mapping[str, Any], *, sensors: dict[str, Any] | None = None
) -> p.ButtonMapping:
    """The ``{click}_type``/``_sku``/``_quantity`` fields as a ``ButtonMapping``.

    Sensor mappings are not edited here and are carried over from ``sensors``.
    """
    data: dict[str, Any] = {click: _action(form, click) for click in CLICKS}
    data["sensors"] = sensors or {}
    try:
        return p.ButtonMapping.model_validate(data)
    except ValidationError as exc:
        raise FormError(describe_validation_error(exc)) from exc
