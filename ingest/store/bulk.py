"""One operator action on many devices: enable, disable, set env, add or remove a tag.

All or nothing: every device is changed in one transaction (a savepoint inside the writer's
group commit), or none is and ``BulkError`` says what was wrong with each device that failed.
Each device gets its own audit row (its page's history shows the change), and an action on
several devices one more, naming every device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from edgeorder import protocol as p
from edgeorder.ingest.domain.groups import check_tag
from edgeorder.ingest.store import groups, registry
from edgeorder.ingest.store.database import Conn, handle
from edgeorder.ingest.store.registry import RegistryError
from edgeorder.kit import transaction

if TYPE_CHECKING:
    from edgeorder.ingest.store.registry import Db

__all__ = ["ACTIONS", "BULK_MAX", "BulkError", "BulkRequest", "BulkResult", "apply_bulk"]

BulkAction = Literal["enable", "disable", "set_env", "add_tag", "remove_tag"]
ACTIONS: tuple[BulkAction, ...] = ("enable", "disable", "set_env", "add_tag", "remove_tag")
BULK_MAX = 1000
"""Devices one request may name."""


@dataclass(frozen=True)
class BulkRequest:
    action: BulkAction
    device_ids: tuple[str, ...]
    env: Literal["dev", "prod"] | None = None
    tag: str | None = None

    def check(self) -> None:
        """RegistryError for a request that is wrong as a whole (before any device)."""
        if self.action not in ACTIONS:
            raise RegistryError(f"action must be one of {', '.join(ACTIONS)}")
        if not self.device_ids:
            raise RegistryError("no device selected")
        if len(self.device_ids) > BULK_MAX:
            raise RegistryError(f"at most {BULK_MAX} devices at once, not {len(self.device_ids)}")
        if self.action == "set_env" and self.env not in ("dev", "prod"):
            raise RegistryError("set_env needs env dev or prod")
        if self.action in ("add_tag", "remove_tag"):
            try:
                check_tag(self.tag or "")
            except ValueError as exc:
                raise RegistryError(str(exc)) from exc

    @property
    def detail(self) -> str:
        arg = self.env if self.action == "set_env" else self.tag
        return self.action if arg is None else f"{self.action} {arg}"


@dataclass(frozen=True)
class BulkResult:
    """The devices changed (in order), and those whose desired config changed (to push)."""

    request: BulkRequest
    changed: list[str]
    config_changed: list[str] = field(default_factory=list)


class BulkError(RegistryError):
    """Nothing was changed; ``errors`` maps each device that failed to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        shown = "; ".join(f"{d}: {e}" for d, e in list(errors.items())[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"nothing changed: {len(errors)} device(s) failed: {shown}{more}")
        self.errors = errors


def _one(req: BulkRequest, actor: str) -> Callable[[Conn, str], Any]:
    env, tag = req.env or "prod", req.tag or ""
    return {
        "enable": lambda c, d: registry.set_enabled(c, d, True, actor=actor),
        "disable": lambda c, d: registry.set_enabled(c, d, False, actor=actor),
        "set_env": lambda c, d: registry.set_env(
            c, d, "dev" if env == "dev" else "prod", actor=actor
        ),
        "add_tag": lambda c, d: groups.add_tag(c, d, tag, actor=actor),
        "remove_tag": lambda c, d: groups.remove_tag(c, d, tag, actor=actor),
    }[req.action]


def apply_bulk(db: Db, req: BulkRequest, *, actor: str = "system") -> BulkResult:
    """Apply ``req`` to every device, or to none (``BulkError``); RegistryError for a request
    that is wrong as a whole."""
    req.check()
    ids = list(dict.fromkeys(req.device_ids))
    change = _one(req, actor)
    errors: dict[str, str] = {}
    with transaction(handle(db)) as conn:
        for device_id in ids:
            try:
                with transaction(conn):  # a savepoint: a device that fails leaves no trace
                    change(conn, device_id)
            except RegistryError as exc:
                errors[device_id] = str(exc)
        if errors:
            raise BulkError(errors)  # rolls every device back
        if len(ids) > 1:  # one device: its own row says it all
            conn.execute(
                "INSERT INTO audit (at, actor, action, device_id, detail) VALUES (?, ?, ?, ?, ?)",
                [
                    p.format_ts(p.utcnow()),
                    actor,
                    "device.bulk",
                    None,
                    f"{req.detail}: {', '.join(ids)}"[:2000],
                ],
            )
    config = ids if req.action == "set_env" else []
    return BulkResult(req, ids, config)
