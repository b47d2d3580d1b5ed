"""``edgeorder broker-auth --out DIR``: a Mosquitto ``passwd`` and ``acl`` from the registry.

Service accounts may read and write every device topic; a device (username = device_id) may
write only its own events, presence, telemetry and config/reported, and read only its own
status and config (ARCHITECTURE.md). Disabled devices are left out of ``passwd``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from edgeorder import protocol as p
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import (
    device_hashes,
    ensure_service_account,
    service_account_hashes,
)
from edgeorder.protocol.topics import DEVICE_READS, DEVICE_WRITES

__all__ = ["main", "render_acl", "render_passwd"]


def render_passwd(hashes: dict[str, str]) -> str:
    """Mosquitto password-file lines ``username:$7$...``, sorted."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(hashes.items()))


def render_acl(service_accounts: list[str]) -> str:
    """The ACL: full device-tree access for service accounts, own-topics-only for devices."""
    root = p.TOPIC_ROOT
    lines = ["# written by 'edgeorder broker-auth'; do not edit by hand", ""]
    for user in sorted(service_accounts):
        lines += [f"user {user}", f"topic readwrite {root}/#", ""]
    lines.append("# devices: username = device_id")
    lines += [f"pattern write {root}/%u/{ch.value}" for ch in DEVICE_WRITES]
    lines += [f"pattern read {root}/%u/{ch.value}" for ch in DEVICE_READS]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(mode)
    tmp.write_text(text)
    tmp.replace(path)


def _service_arg(value: str) -> tuple[str, str]:
    """``USER=PASSWORD_FILE`` -> (user, password read from the file's first line)."""
    user, sep, path = value.partition("=")
    if not sep or not p.is_valid_device_id(user) or not path:
        raise ValueError(f"--service {value!r}: expected USER=PASSWORD_FILE")
    try:
        password = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"--service {value!r}: cannot read {path}: {exc.strerror}") from exc
    if not password:
        raise ValueError(f"--service {value!r}: {path} is empty")
    return user, password


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write DIR/passwd and DIR/acl for Mosquitto from the device "
        "registry (password_file / acl_file); reload Mosquitto (SIGHUP) afterwards.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("EDGEORDER_INGEST_DATA_DIR"),
        help="ingest data directory (env EDGEORDER_INGEST_DATA_DIR)",
    )
    parser.add_argument(
        "--mode",
        type=lambda v: int(v, 8),
        default=0o640,
        help="octal file mode (default 640: make the group mosquitto's; a root-"
        "started Mosquitto reads its files as user mosquitto)",
    )
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="USER=PASSWORD_FILE",
        help="create or update service account USER (e.g. ingest) with the "
        "password in PASSWORD_FILE before writing; repeatable",
    )
    args = parser.parse_args(argv)
    try:
        accounts = [_service_arg(value) for value in args.service]
    except ValueError as exc:
        parser.error(str(exc))
    db_path = Path(args.data_dir or Settings().data_dir) / "ingest.db"
    if not db_path.exists() and not accounts:
        print(f"{prog}: no registry at {db_path}", file=sys.stderr)
        return 1
    db = open_db(db_path)
    try:
        for user, password in accounts:
            ensure_service_account(db, user, password, actor="cli")
        devices, services = device_hashes(db), service_account_hashes(db)
    finally:
        db.conn.close()
    clash = set(devices) & set(services)
    if clash:
        print(
            f"{prog}: names used by both a device and a service account: {sorted(clash)}",
            file=sys.stderr,
        )
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "passwd", render_passwd({**devices, **services}), args.mode)
    _write(args.out / "acl", render_acl(list(services)), args.mode)
    print(
        f"wrote {args.out / 'passwd'} ({len(devices)} devices, {len(services)} service "
        f"accounts) and {args.out / 'acl'}"
    )
    return 0
