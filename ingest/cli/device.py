"""``edgeorder device add|list|show|disable|enable|remove|rotate-credentials``.

Works on ingest's database directly (``--data-dir`` or ``EDGEORDER_INGEST_DATA_DIR``). A running
ingest picks changes up by itself (it re-reads the registry when it meets an unknown device).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
from pydantic import ValidationError

from edgeorder import protocol as p
from edgeorder.ingest.domain.devices import (
    CANCEL_WINDOW_MAX_S,
    DEFAULT_CANCEL_WINDOW_S,
    NAME_MAX_CHARS,
    QUANTITY_MAX,
    check_cancel_window,
    check_name,
    check_quantity,
)
from edgeorder.ingest.domain.firmware import render_agent_toml, write_agent_toml
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from edgeorder.protocol.codec import describe_validation_error

__all__ = ["main"]

T = TypeVar("T")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Manage the device registry.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("EDGEORDER_INGEST_DATA_DIR"),
        help="ingest data directory (env EDGEORDER_INGEST_DATA_DIR; "
        "default ./edgeorder-data/ingest)",
    )
    # --data-dir is accepted after the action too ("device add X --data-dir D")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, help="ingest data directory"
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        parents=[common],
        help="register a device, print its MQTT password once, write its firmware-config TOML",
    )
    add.add_argument("device_id", help="1-64 of [A-Za-z0-9_-]; also its MQTT username")
    add.add_argument("--sku", required=True, help="SKU a single click reorders")
    add.add_argument(
        "--quantity",
        type=_checked(check_quantity, _whole),
        default=1,
        help=f"quantity per order, 1..{QUANTITY_MAX} (default 1)",
    )
    add.add_argument("--double-sku", help="SKU a double click reorders (default: nothing)")
    add.add_argument(
        "--env",
        choices=["dev", "prod"],
        default="prod",
        help="dev: orders are Test orders (default prod)",
    )
    add.add_argument(
        "--name",
        default="",
        type=_checked(check_name, str),
        help=f"human-readable name ({NAME_MAX_CHARS} characters max)",
    )
    add.add_argument(
        "--allow-parallel", action="store_true", help="no order-in-flight throttle for this device"
    )
    add.add_argument(
        "--cancel-window-s",
        type=_checked(check_cancel_window, _whole),
        default=DEFAULT_CANCEL_WINDOW_S,
        help="a long press cancels the last order within this many seconds, "
        f"0..{CANCEL_WINDOW_MAX_S} (7 days; default {DEFAULT_CANCEL_WINDOW_S})",
    )
    add.add_argument(
        "--mqtt-url",
        default=os.environ.get("EDGEORDER_INGEST_MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="broker URL written into the firmware config",
    )
    add.add_argument(
        "--config-out",
        type=Path,
        help="where to write the firmware-config TOML (default: print it)",
    )
    lst = sub.add_parser("list", parents=[common], help="list devices")
    lst.add_argument("--json", action="store_true", help="JSON output")
    show = sub.add_parser("show", parents=[common], help="one device")
    show.add_argument("device_id")
    show.add_argument("--json", action="store_true", help="JSON output")
    for name, text in (
        ("disable", "refuse the device's events and MQTT login"),
        ("enable", "accept the device again"),
        ("remove", "delete the device from the registry"),
        ("rotate-credentials", "new MQTT password (printed once)"),
    ):
        sub.add_parser(name, parents=[common], help=text).add_argument("device_id")
    return parser


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _checked(check: Callable[[T], T], convert: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type``: ``convert`` the text, then ``check`` it against the domain's
    limit; the error becomes a usage error that says the range (exit status 2)."""

    def parse(text: str) -> T:
        try:
            return check(convert(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _mapping(args: argparse.Namespace) -> p.ButtonMapping:
    """The mapping of ``device add``; RegistryError names a bad SKU."""
    try:
        return p.ButtonMapping(
            single=p.ReorderAction(sku=args.sku, quantity=args.quantity),
            double=p.ReorderAction(sku=args.double_sku, quantity=args.quantity)
            if args.double_sku
            else p.NoAction(),
        )
    except ValidationError as exc:
        raise registry.RegistryError(f"invalid mapping: {describe_validation_error(exc)}") from exc


def _add(db: sqlite_utils.Database, args: argparse.Namespace) -> int:
    mapping = _mapping(args)
    row, password = registry.add_device(
        db,
        args.device_id,
        name=args.name,
        mapping=mapping,
        env=args.env,
        allow_parallel=args.allow_parallel,
        cancel_window_s=args.cancel_window_s,
        actor="cli",
    )
    toml = render_agent_toml(args.device_id, mqtt_url=args.mqtt_url, password=password)
    print(f"device {row['device_id']} added; MQTT username {row['device_id']}")
    print(f"password (shown once): {password}")
    if args.config_out:
        write_agent_toml(args.config_out, toml)
        print(f"firmware config written to {args.config_out}")
    else:
        print(toml, end="")
    return 0


def _table(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        single = row["mapping"].get("single", {})
        action = f"{single.get('sku')} x{single.get('quantity')}" if single.get("sku") else "-"
        state = "enabled" if row["enabled"] else "disabled"
        print(
            f"{row['device_id']:<24} {state:<9} {row['env']:<5} single={action:<20} "
            f"config v{row['config_version']}  {row['name']}"
        )


def _run(db: sqlite_utils.Database, args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[], int]] = {
        "add": lambda: _add(db, args),
        "list": lambda: _print_rows(registry.list_devices(db), args.json),
        "show": lambda: _print_one(registry.get_device(db, args.device_id), args.json),
        "disable": lambda: _done(
            registry.set_enabled(db, args.device_id, False, actor="cli"), "disabled"
        ),
        "enable": lambda: _done(
            registry.set_enabled(db, args.device_id, True, actor="cli"), "enabled"
        ),
        "remove": lambda: _removed(db, args.device_id),
        "rotate-credentials": lambda: _rotated(db, args.device_id),
    }
    return actions[args.action]()


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        _table(rows)
    return 0


def _print_one(row: dict[str, Any], as_json: bool) -> int:
    print(json.dumps(row, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in row.items()))
    return 0


def _done(row: dict[str, Any], what: str) -> int:
    print(f"device {row['device_id']} {what}")
    return 0


def _removed(db: sqlite_utils.Database, device_id: str) -> int:
    registry.remove_device(db, device_id, actor="cli")
    print(f"device {device_id} removed")
    return 0


def _rotated(db: sqlite_utils.Database, device_id: str) -> int:
    password = registry.rotate_credentials(db, device_id, actor="cli")
    print(f"new password for {device_id} (shown once): {password}")
    print("re-run 'edgeorder broker-auth' for Mosquitto and update the device's config")
    return 0


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    data_dir = args.data_dir or Settings().data_dir
    db = open_db(Path(data_dir) / "ingest.db")
    try:
        return _run(db, args)
    except registry.RegistryError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.conn.close()
