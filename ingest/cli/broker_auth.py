"""``edgeorder broker-auth --out DIR``: Mosquitto's ``passwd`` and ``acl`` from the registry.

Service accounts may read and write every device topic; observer accounts (Home Assistant)
may read them and write only Home Assistant's birth topic; a device (username = device_id) may
write only its own events, presence, telemetry and config/reported, and read only its own
status and config (ARCHITECTURE.md). Disabled devices are left out of ``passwd``.

Run as root on the broker host after every add, disable, enable, remove or rotate. The files
are replaced atomically, owned ``mosquitto:mosquitto`` mode 0640 by default (Mosquitto reads
them as user ``mosquitto`` after dropping root, and newer releases warn about any other owner);
``--reload`` then SIGHUPs Mosquitto through its pid file, as ``systemctl reload mosquitto``
does. ``--service ingest=FILE --create-password`` makes ingest's own MQTT password on the
first run; ``--observer homeassistant=FILE`` the same for Home Assistant's read-only account.
The registry is opened as the owner of ingest's data directory, so SQLite files
stay ingest's; with ``--db-url`` it is the workers' PostgreSQL (``ingest.cli.database``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeorder import protocol as p
from edgeorder.ingest.cli.database import add_database_options, database_of
from edgeorder.ingest.cli.system import (
    HostError,
    Ownership,
    as_owner_of,
    ensure_dir,
    parse_ownership,
    reload_process,
    write_atomic,
)
from edgeorder.ingest.domain.broker_access import AccountRole
from edgeorder.ingest.domain.credentials import generate_password
from edgeorder.ingest.domain.homeassistant import is_valid_prefix
from edgeorder.ingest.domain.mosquitto_files import HA_PREFIX, render_acl, render_passwd
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import audit
from edgeorder.ingest.store.audit import BROKER_FILES_WRITTEN
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.registry import (
    account_roles,
    device_hashes,
    ensure_service_account,
    service_account_hashes,
)
from edgeorder.kit import transaction

__all__ = ["BROKER_FILES_WRITTEN", "main", "render_acl", "render_passwd"]

DEFAULT_PID_FILE = Path("/run/mosquitto/mosquitto.pid")  # Debian's mosquitto.conf sets it


@dataclass(frozen=True)
class Service:
    """``--service USER=FILE`` or ``--observer USER=FILE``: an account, the file holding its
    password, and its role."""

    user: str
    path: Path
    role: AccountRole = "service"

    @property
    def option(self) -> str:
        return f"--{self.role} {self.user}"


def _account_arg(role: AccountRole) -> Callable[[str], Service]:
    def parse(value: str) -> Service:
        user, sep, path = value.partition("=")
        if not sep or not p.is_valid_device_id(user) or not path:
            raise argparse.ArgumentTypeError(f"{value!r}: expected USER=PASSWORD_FILE")
        return Service(user, Path(path), role)

    return parse


def _ha_prefix_arg(value: str) -> str:
    if not is_valid_prefix(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: topic levels of letters, digits, '_' and '-' separated by '/'"
        )
    return value


def _mode_arg(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an octal mode") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{value!r} is not a file mode")
    return mode


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write DIR/passwd and DIR/acl for Mosquitto (password_file / acl_file in "
        "deploy/mosquitto/edgeorder.conf) from the device registry. Run it as root after "
        "every device add, disable, enable, remove or credential rotation, with --reload.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    add_database_options(parser)
    parser.add_argument(
        "--owner",
        default="mosquitto:mosquitto",
        help="USER:GROUP of the files, as chown takes it (default mosquitto:mosquitto: the "
        "user Mosquitto runs as; '' keeps the writer's)",
    )
    parser.add_argument(
        "--mode", type=_mode_arg, default=0o640, help="octal file mode (default 640)"
    )
    parser.add_argument(
        "--service",
        type=_account_arg("service"),
        action="append",
        default=[],
        metavar="USER=PASSWORD_FILE",
        help="create or update service account USER (e.g. ingest) with the password in "
        "PASSWORD_FILE; repeatable (one account per ingest worker)",
    )
    parser.add_argument(
        "--observer",
        type=_account_arg("observer"),
        action="append",
        default=[],
        metavar="USER=PASSWORD_FILE",
        help="create or update read-only account USER (e.g. homeassistant, for Home "
        "Assistant's MQTT integration) with the password in PASSWORD_FILE: it may read every "
        "device topic and the discovery prefix, and write only PREFIX/status (Home "
        "Assistant's birth message); repeatable. An existing account named again changes role",
    )
    parser.add_argument(
        "--create-password",
        action="store_true",
        help="write a new random password into each --service and --observer file that does "
        "not exist yet (mode 640, group of the data directory: the group ingest runs as)",
    )
    parser.add_argument(
        "--ha-discovery-prefix",
        type=_ha_prefix_arg,
        default=HA_PREFIX,
        help="Home Assistant's discovery prefix: service accounts may read and write PREFIX/# "
        "(ingest --ha-discovery publishes there), observers read it; devices never may "
        "(default homeassistant)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="then make Mosquitto re-read the files (SIGHUP to the pid in --pid-file)",
    )
    parser.add_argument(
        "--pid-file",
        type=Path,
        default=DEFAULT_PID_FILE,
        help=f"Mosquitto's pid_file (default {DEFAULT_PID_FILE}, as Debian's config sets)",
    )
    return parser


def _service_file_owner(data_dir: Path) -> Ownership:
    """root and the data directory's group (the service's), when we are root."""
    if os.geteuid() != 0 or not data_dir.is_dir():
        return Ownership()
    return Ownership(0, data_dir.stat().st_gid, f"root:{data_dir.stat().st_gid}")


def _read_password(service: Service, create: bool, data_dir: Path) -> str:
    if create and not service.path.exists():
        password = generate_password()
        owner = _service_file_owner(data_dir)
        ensure_dir(service.path.parent, mode=0o750, owner=owner)
        write_atomic(service.path, (password + "\n").encode(), mode=0o640, owner=owner)
        print(f"created {service.path}: a new password for {service.role} account {service.user}")
        return password
    try:
        password = service.path.read_text().strip()
    except OSError as exc:
        hint = " (add --create-password to make one)" if not service.path.exists() else ""
        raise HostError(
            f"{service.option}: cannot read {service.path}{hint}: {exc.strerror}"
        ) from None
    if not password:
        raise HostError(f"{service.option}: {service.path} is empty")
    return password


def _registry_hashes(
    database: Database, accounts: Sequence[tuple[Service, str]]
) -> tuple[dict[str, str], dict[str, str], dict[str, AccountRole]]:
    with database.open() as conn:
        before = account_roles(conn) if accounts else {}
        for account, password in accounts:
            ensure_service_account(conn, account.user, password, role=account.role, actor="cli")
            was = before.get(account.user)
            if was is not None and was != account.role:  # said: ingest made an observer stops
                print(f"account {account.user}: role changed from {was} to {account.role}")
        return device_hashes(conn), service_account_hashes(conn), account_roles(conn)


def _record_run(database: Database, detail: str) -> None:
    with database.open(migrate=False) as conn, transaction(conn):
        audit.record(
            conn,
            at=p.format_ts(p.utcnow()),
            actor="cli",
            action=BROKER_FILES_WRITTEN,
            detail=detail,
        )


def _check_traversable(directory: Path, owner: Ownership) -> None:
    """The broker must be able to enter the directory to read the files in it."""
    st = directory.stat()
    if st.st_mode & 0o001 or (owner.uid == -1 and owner.gid == -1):
        return
    if (owner.uid == st.st_uid and st.st_mode & 0o100) or (
        owner.gid == st.st_gid and st.st_mode & 0o010
    ):
        return
    raise HostError(
        f"{directory} is mode {st.st_mode & 0o777:o}, owner {st.st_uid}:{st.st_gid}: "
        f"{owner.text} could not enter it to read the files; "
        f"chgrp {owner.text.partition(':')[2] or owner.uid} {directory} && chmod g+x {directory}"
    )


def run(args: argparse.Namespace, prog: str) -> int:
    owner = parse_ownership(args.owner)
    data_dir = Path(args.data_dir or Settings().data_dir)
    try:
        database = database_of(args)
    except ValueError as exc:
        raise HostError(str(exc)) from None
    if database.path is not None and os.geteuid() == 0 and not data_dir.is_dir():
        # root would create ingest's database as root, and ingest could not open it
        raise HostError(
            f"{data_dir} does not exist: create it for the user ingest runs as first "
            f"(install -d -o edgeorder -g edgeorder -m 0700 {data_dir})"
        )
    named = [*args.service, *args.observer]
    twice = sorted({a.user for a in named if [b.user for b in named].count(a.user) > 1})
    if twice:
        raise HostError(f"accounts named more than once: {twice}")
    accounts = [(a, _read_password(a, args.create_password, data_dir)) for a in named]
    if database.path is not None and not database.path.exists() and not accounts:
        print(f"{prog}: no registry at {database}", file=sys.stderr)
        return 1
    with as_owner_of(data_dir):
        devices, services, roles = _registry_hashes(database, accounts)
    clash = set(devices) & set(services)
    if clash:
        print(
            f"{prog}: names used by both a device and a service account: {sorted(clash)}",
            file=sys.stderr,
        )
        return 1
    ensure_dir(args.out, mode=0o750, owner=owner)
    _check_traversable(args.out, owner)
    passwd = render_passwd({**devices, **services}).encode()
    write_atomic(args.out / "passwd", passwd, mode=args.mode, owner=owner)
    write_atomic(
        args.out / "acl",
        render_acl(
            [u for u, role in roles.items() if role == "service"],
            args.ha_discovery_prefix,
            observers=[u for u, role in roles.items() if role == "observer"],
        ).encode(),
        mode=args.mode,
        owner=owner,
    )
    observers = sum(1 for role in roles.values() if role == "observer")
    summary = (
        f"{len(devices)} devices, {len(services) - observers} service accounts, "
        f"{observers} observers"
    )
    with as_owner_of(data_dir):
        _record_run(database, summary)
    print(f"wrote {args.out / 'passwd'} ({summary}) and {args.out / 'acl'}")
    if args.reload:
        pid = reload_process(args.pid_file, expect="mosquitto")
        print(f"reloaded mosquitto (SIGHUP to pid {pid})")
    else:
        print("reload Mosquitto for it to take effect (--reload, or systemctl reload mosquitto)")
    return 0


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    try:
        return run(args, prog)
    except HostError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
