"""``edgeorder evendi assign|list|show|withdraw|requeue``: e-vendi orders queued for devices.

e-vendi can only finalize orders that already exist (``closeOrder``): assign an open e-vendi
order to a device, and the device's next press closes it (oldest first). Works on ingest's
database directly (``--data-dir`` or ``EDGEORDER_INGEST_DATA_DIR``); a running ingest sees
the queue at the next press.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from edgeorder.ingest.cli.database import add_database_options, database_of, missing_database
from edgeorder.ingest.store import evendi_assignments as book
from edgeorder.ingest.store.database import Conn

__all__ = ["main"]


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Queue open e-vendi orders for devices: each press closes the device's "
        "oldest pending one (e-vendi's closeOrder), exactly once.",
    )
    add_database_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    add_database_options(common, after_action=True)
    common.add_argument("--json", action="store_true", help="JSON output")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "assign", parents=[common], help="queue an open e-vendi order for a device"
    )
    add.add_argument("device_id", help="the device whose press closes it")
    add.add_argument("order_id", help="e-vendi's orderId (an order open on e-vendi)")
    add.add_argument("--sku", help="only presses ordering this SKU close it (default: any)")
    add.add_argument("--note", default="", help="what the order is, for the operator")
    lst = sub.add_parser("list", parents=[common], help="assignments, newest first")
    lst.add_argument("--device", help="only this device's")
    lst.add_argument("--state", choices=book.STATES, help="only in this state")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    for name, text in (
        ("show", "one assignment"),
        ("withdraw", "take a pending order off its device's queue"),
        ("requeue", "queue a failed order again, after checking it is still open on e-vendi"),
    ):
        sub.add_parser(name, parents=[common], help=text).add_argument("id", type=int)
    return parser


def _line(row: dict[str, Any]) -> str:
    sku = row["sku"] or "any sku"
    extra = f"  ({row['last_error']})" if row["last_error"] else ""
    return (
        f"#{row['id']:<5} {row['device_id']:<24} {row['order_id']:<20} {row['state']:<9} "
        f"{sku:<16} {row['note']}{extra}"
    )


def _print(rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(rows if len(rows) != 1 else rows[0], indent=2))
    else:
        for row in rows:
            print(_line(row))
    return 0


def _run(conn: Conn, args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "assign": lambda: [
            book.assign(
                conn, args.device_id, args.order_id, sku=args.sku, note=args.note, actor="cli"
            )
        ],
        "list": lambda: book.list_assignments(
            conn, device_id=args.device, state=args.state, limit=args.limit
        ),
        "show": lambda: [book.get_assignment(conn, args.id)],
        "withdraw": lambda: [book.withdraw(conn, args.id, actor="cli")],
        "requeue": lambda: [book.requeue(conn, args.id, actor="cli")],
    }
    return _print(actions[args.action](), args.json)


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
    with database.open() as conn:
        try:
            return _run(conn, args)
        except book.AssignmentError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
