"""``edgeorder device add|list|show|disable|enable|tag|set-site|remove|rotate-credentials``.

``enable``, ``disable`` and ``tag`` take several devices and change all of them or none
(``ingest.store.bulk``).

Works on ingest's database directly: ``ingest.db`` in ``--data-dir``, or the PostgreSQL of
``--db-url`` (``ingest.cli.database``). A running ingest applies every change within a second,
without a restart (it reads the registry's mark, the newest audit row, each second; and it
re-reads the registry when it meets an unknown device); on PostgreSQL every change is also
announced to the running workers (LISTEN/NOTIFY), which re-read the registry at once.
Mosquitto learns of changes from ``edgeorder broker-auth --reload`` (EMQX asks ingest:
``deploy/cluster/``).

``add`` and ``rotate-credentials`` write the device's firmware config with the broker URL as
devices reach it (``--mqtt-url``, env ``EDGEORDER_INGEST_DEVICE_MQTT_URL``, the setting ingest
shows on its Provisioning page) and, with ``--ca-file``, a copy of the broker's CA named
``ca.crt`` beside it, which the TOML points at.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError

from edgeorder import protocol as p
from edgeorder.ingest.cli.database import (
    add_database_options,
    database_of,
    missing_database,
    tell_workers,
)
from edgeorder.ingest.cli.run import settings_from_env
from edgeorder.ingest.cli.system import as_owner_of
from edgeorder.ingest.connectors.factory import make_connector
from edgeorder.ingest.domain.devices import (
    CANCEL_WINDOW_MAX_S,
    DEFAULT_CANCEL_WINDOW_S,
    NAME_MAX_CHARS,
    QUANTITY_MAX,
    check_cancel_window,
    check_name,
    check_quantity,
)
from edgeorder.ingest.domain.firmware import DEVICE_CA_NAME, render_agent_toml, write_agent_toml
from edgeorder.ingest.domain.groups import SITE_MAX_CHARS, TAGS_MAX
from edgeorder.ingest.orders.catalog import SkuCatalog, SkuError
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import groups, registry
from edgeorder.ingest.store.bulk import BulkError, BulkRequest, apply_bulk
from edgeorder.ingest.store.database import Conn
from edgeorder.protocol.codec import describe_validation_error

__all__ = ["main"]

T = TypeVar("T")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Manage the device registry.")
    add_database_options(parser)
    # --data-dir/--db-url are accepted after the action too ("device add X --data-dir D")
    common = argparse.ArgumentParser(add_help=False)
    add_database_options(common, after_action=True)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    config = _config_options()
    add = sub.add_parser(
        "add",
        parents=[common, config],
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
        "--allow-unknown-sku",
        action="store_true",
        help="add the device even if a SKU is not in the order platform's catalog, or the "
        "catalog cannot be read now (the platform is the one ingest is configured with: env "
        "EDGEORDER_INGEST_CONNECTOR, _ORDERCORE_URL, _ORDERCORE_TOKEN, _CONNECTOR_OPTIONS); "
        "without it such a device is refused, since its first press would fail",
    )
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
        "--tag",
        action="append",
        default=[],
        help=f"a tag grouping the device (repeat for more, at most {TAGS_MAX}): 1-32 of "
        "letters, digits and _.:-",
    )
    add.add_argument(
        "--site", default="", help=f"where the device is ({SITE_MAX_CHARS} characters max)"
    )
    lst = sub.add_parser("list", parents=[common], help="list devices")
    lst.add_argument("--json", action="store_true", help="JSON output")
    lst.add_argument("--tag", help="only devices with this tag")
    lst.add_argument("--site", help="only devices at this site")
    show = sub.add_parser("show", parents=[common], help="one device")
    show.add_argument("device_id")
    show.add_argument("--json", action="store_true", help="JSON output")
    for name, text in (
        ("disable", "refuse the devices' events and MQTT logins (all named, or none)"),
        ("enable", "accept the devices again (all named, or none)"),
    ):
        sub.add_parser(name, parents=[common], help=text).add_argument(
            "device_ids", nargs="+", metavar="device_id"
        )
    sub.add_parser("remove", parents=[common], help="delete the device from the registry")
    sub.choices["remove"].add_argument("device_id")
    tag = sub.add_parser(
        "tag", parents=[common], help="add or remove a tag on devices (all named, or none)"
    )
    tag.add_argument("device_ids", nargs="+", metavar="device_id")
    which = tag.add_mutually_exclusive_group(required=True)
    which.add_argument("--add", metavar="TAG", help="give every device this tag")
    which.add_argument("--remove", metavar="TAG", help="take this tag off every device")
    site = sub.add_parser("set-site", parents=[common], help="set (or with '' clear) a site")
    site.add_argument("device_id")
    site.add_argument("site")
    rotate = sub.add_parser(
        "rotate-credentials",
        parents=[common, config],
        help="new MQTT password (printed once); with --config-out, a new firmware config",
    )
    rotate.add_argument("device_id")
    return parser


LOOPBACK_URL = "mqtt://127.0.0.1:1883"


def _config_options() -> argparse.ArgumentParser:
    """What goes into a device's firmware config besides its credentials."""
    env = os.environ
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--mqtt-url",
        type=_mqtt_url,
        default=env.get("EDGEORDER_INGEST_DEVICE_MQTT_URL")
        or env.get("EDGEORDER_INGEST_MQTT_URL", LOOPBACK_URL),
        help="broker URL as the device reaches it, e.g. mqtts://192.0.2.10:8883 (env "
        "EDGEORDER_INGEST_DEVICE_MQTT_URL; default: ingest's own URL, loopback)",
    )
    options.add_argument(
        "--ca-file",
        type=Path,
        default=env.get("EDGEORDER_INGEST_DEVICE_CA_FILE"),
        help="the broker's CA certificate (env EDGEORDER_INGEST_DEVICE_CA_FILE): the config "
        f"names it {DEVICE_CA_NAME}, and --config-out copies it there",
    )
    options.add_argument(
        "--config-out",
        type=Path,
        help="where to write the firmware-config TOML (default: print it)",
    )
    return options


def _mqtt_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT"
        )
    return value


class ProvisioningError(RuntimeError):
    """A firmware config cannot be made as asked (checked before the registry changes)."""


def _read_ca(args: argparse.Namespace) -> bytes | None:
    """The CA to hand out (and a check of --config-out), before the registry changes: a
    failure after it would lose the password that is shown only once."""
    if args.config_out is not None and args.config_out.is_dir():
        raise ProvisioningError(f"--config-out {args.config_out} is a directory: name the file")
    if not args.ca_file:
        return None
    try:
        return bytes(args.ca_file.read_bytes())
    except OSError as exc:
        raise ProvisioningError(f"cannot read --ca-file {args.ca_file}: {exc.strerror}") from None


def _firmware_config(
    args: argparse.Namespace, device_id: str, password: str, ca_pem: bytes | None
) -> int:
    """Print or write the device's TOML (and its ca.crt); say what a remote device needs."""
    if urlsplit(args.mqtt_url).hostname in ("127.0.0.1", "localhost", "::1"):
        print(
            f"note: the config points at {args.mqtt_url}, which only a device on this machine "
            "reaches; pass --mqtt-url (as devices reach the broker) for a real device",
            file=sys.stderr,
        )
    toml = render_agent_toml(
        device_id,
        mqtt_url=args.mqtt_url,
        password=password,
        ca_file=DEVICE_CA_NAME if ca_pem is not None else None,
    )
    if not args.config_out:
        print(toml, end="")
        return 0
    try:
        write_agent_toml(args.config_out, toml)
        if ca_pem is not None:
            (args.config_out.parent / DEVICE_CA_NAME).write_bytes(ca_pem)
    except OSError as exc:
        print(
            f"cannot write {args.config_out}: {exc.strerror}; the password above is the "
            f"device's (or run rotate-credentials {device_id} --config-out FILE)",
            file=sys.stderr,
        )
        return 1
    print(f"firmware config written to {args.config_out}")
    if ca_pem is not None:
        print(
            f"broker CA written to {args.config_out.parent / DEVICE_CA_NAME}: copy both files "
            "into the device's /etc/edgeorder/"
        )
    return 0


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


def _check_skus(mapping: p.ButtonMapping, allow_unknown: bool) -> None:
    """Ask the configured platform's catalog (``ingest.orders.catalog``); RegistryError
    names an unknown SKU and the platform, or says the catalog cannot be read now."""
    try:
        settings = settings_from_env(os.environ)
        connector = make_connector(
            settings.connector,
            default_profile=settings.default_profile,
            batch_max=settings.outbox_batch_max,
        )
    except (ValidationError, ValueError) as exc:
        raise registry.RegistryError(
            f"cannot check the SKUs: the platform settings: {exc}"
        ) from exc

    async def check() -> list[str]:
        try:
            return await SkuCatalog(connector).check(mapping, allow_unknown=allow_unknown)
        finally:
            await connector.close()

    try:
        warnings = asyncio.run(check())
    except SkuError as exc:
        hinted = exc.hinted("add --allow-unknown-sku to add it unchecked")
        raise registry.RegistryError(str(hinted)) from exc
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _add(db: Conn, args: argparse.Namespace) -> int:
    mapping = _mapping(args)
    ca_pem = _read_ca(args)
    _check_skus(mapping, args.allow_unknown_sku)
    row, password = registry.add_device(
        db,
        args.device_id,
        name=args.name,
        mapping=mapping,
        env=args.env,
        allow_parallel=args.allow_parallel,
        cancel_window_s=args.cancel_window_s,
        tags=args.tag,
        site=args.site,
        actor="cli",
    )
    print(f"device {row['device_id']} added; MQTT username {row['device_id']}")
    print(f"password (shown once): {password}")
    print("the broker accepts it after 'edgeorder broker-auth ... --reload'")
    return _firmware_config(args, args.device_id, password, ca_pem)


def _table(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        single = row["mapping"].get("single", {})
        action = f"{single.get('sku')} x{single.get('quantity')}" if single.get("sku") else "-"
        state = "enabled" if row["enabled"] else "disabled"
        print(
            f"{row['device_id']:<24} {state:<9} {row['env']:<5} single={action:<20} "
            f"config v{row['config_version']}  {row['name']}"
        )


def _run(db: Conn, args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[], int]] = {
        "add": lambda: _add(db, args),
        "list": lambda: _print_rows(
            registry.list_devices(db, tag=args.tag, site=args.site), args.json
        ),
        "show": lambda: _print_one(registry.get_device(db, args.device_id), args.json),
        "disable": lambda: _bulk(db, BulkRequest("disable", tuple(args.device_ids)), "disabled"),
        "enable": lambda: _bulk(db, BulkRequest("enable", tuple(args.device_ids)), "enabled"),
        "tag": lambda: _bulk(
            db,
            BulkRequest(
                "add_tag" if args.add else "remove_tag",
                tuple(args.device_ids),
                tag=args.add or args.remove,
            ),
            f"tagged {args.add}" if args.add else f"untagged {args.remove}",
        ),
        "set-site": lambda: _set_site(db, args.device_id, args.site),
        "remove": lambda: _removed(db, args.device_id),
        "rotate-credentials": lambda: _rotated(db, args),
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


def _bulk(db: Conn, req: BulkRequest, what: str) -> int:
    """One change for every named device, or none: each failing device is named."""
    try:
        done = apply_bulk(db, req, actor="cli")
    except BulkError as exc:
        for device_id, why in exc.errors.items():
            print(f"{device_id}: {why}", file=sys.stderr)
        raise registry.RegistryError(
            f"nothing changed ({len(exc.errors)} device(s) failed)"
        ) from exc
    for device_id in done.changed:
        print(f"device {device_id} {what}")
    return 0


def _set_site(db: Conn, device_id: str, site: str) -> int:
    stored = groups.set_site(db, device_id, site, actor="cli")
    print(f"device {device_id} site {stored!r}" if stored else f"device {device_id} has no site")
    return 0


def _removed(db: Conn, device_id: str) -> int:
    registry.remove_device(db, device_id, actor="cli")
    print(f"device {device_id} removed")
    return 0


def _rotated(db: Conn, args: argparse.Namespace) -> int:
    ca_pem = _read_ca(args)
    password = registry.rotate_credentials(db, args.device_id, actor="cli")
    print(f"new password for {args.device_id} (shown once): {password}")
    print(
        "re-run 'edgeorder broker-auth ... --reload' for Mosquitto and update the device's config"
    )
    if args.config_out:
        return _firmware_config(args, args.device_id, password, ca_pem)
    return 0


_CHANGES = frozenset(
    {"add", "disable", "enable", "remove", "rotate-credentials", "tag", "set-site"}
)


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    try:
        database = database_of(args)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    missing = missing_database(database) if args.action in ("list", "show") else None
    if missing is not None:
        print(f"{prog}: {missing}", file=sys.stderr)
        return 1
    data_dir = Path(args.data_dir or Settings().data_dir)
    with as_owner_of(data_dir):  # as root: a SQLite database and its WAL files stay ingest's
        conn = database.connect()
        try:
            database.migrate_conn(conn)
        except BaseException:
            conn.close()
            raise
    try:
        status = _run(conn, args)
        if args.action in _CHANGES:
            for device_id in getattr(args, "device_ids", None) or [args.device_id]:
                tell_workers(conn, "device", device_id)
        return status
    except (registry.RegistryError, ProvisioningError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
