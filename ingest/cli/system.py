"""Files and processes of the host, for the commands an operator runs as root on the server
(``broker-auth``, ``tls``, ``device``): atomic writes with an owner, group and mode a service
can read, acting as the owner of ingest's data directory, signalling a broker by its pid file.

Why these exist: a file Mosquitto (user ``mosquitto``) or ingest (user ``edgeorder``) cannot
read stops it at its next reload, and a database or WAL file root creates in ingest's data
directory stops ingest at its next start.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HostError",
    "Ownership",
    "as_owner_of",
    "ensure_dir",
    "parse_ownership",
    "reload_process",
    "write_atomic",
]


class HostError(RuntimeError):
    """A host operation that cannot be done as asked; the message says what to do."""


@dataclass(frozen=True)
class Ownership:
    """``chown`` target: uid/gid, -1 for "leave as the writer's"."""

    uid: int = -1
    gid: int = -1
    text: str = ""


def parse_ownership(value: str) -> Ownership:
    """``USER:GROUP``, ``USER``, ``:GROUP`` or ``""`` (the writer's own), as chown takes them."""
    user, _, group = value.partition(":")
    try:
        uid = pwd.getpwnam(user).pw_uid if user else -1
    except KeyError:
        raise HostError(f"no user {user!r} on this host") from None
    try:
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError:
        raise HostError(f"no group {group!r} on this host") from None
    return Ownership(uid, gid, value)


def write_atomic(path: Path, data: bytes, *, mode: int, owner: Ownership = Ownership()) -> None:
    """Replace ``path`` in one rename: a reader (a broker reloading) sees the old file or the
    new one, never half of it, and never the new one with the wrong owner or mode."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if owner.uid != -1 or owner.gid != -1:
                _fchown(out.fileno(), owner, path)
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fchown(fd: int, owner: Ownership, path: Path) -> None:
    try:
        os.fchown(fd, owner.uid, owner.gid)
    except PermissionError:
        raise HostError(
            f"cannot give {path} to {owner.text!r}: run as root (sudo), or choose another owner"
        ) from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, *, mode: int, owner: Ownership = Ownership()) -> None:
    """Create ``path`` (and parents) if missing; a new one gets ``mode`` and ``owner``."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    if owner.uid != -1 or owner.gid != -1:
        try:
            os.chown(path, owner.uid, owner.gid)
        except PermissionError:
            raise HostError(f"cannot give {path} to {owner.text!r}: run as root") from None
    path.chmod(mode)


@contextlib.contextmanager
def as_owner_of(directory: Path) -> Iterator[None]:
    """Run the body with the effective uid/gid of ``directory``'s owner when we are root and
    it belongs to someone else: the SQLite files (database, -wal, -shm) root would create
    there stay the service's. Anything else runs the body unchanged."""
    if os.geteuid() != 0 or not directory.is_dir():
        yield
        return
    stat = directory.stat()
    if stat.st_uid == 0:
        yield
        return
    os.setegid(stat.st_gid)
    os.seteuid(stat.st_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def reload_process(pid_file: Path, *, expect: str) -> int:
    """SIGHUP the process named ``expect`` whose pid is in ``pid_file``; returns the pid.

    Mosquitto re-reads its password file and ACL on SIGHUP (what ``systemctl reload
    mosquitto`` sends too); the name check keeps a stale pid file from signalling a stranger.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise HostError(
            f"cannot read a pid from {pid_file} ({exc}): is {expect} running? (its "
            "config sets the file with pid_file; Debian's does)"
        ) from None
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        raise HostError(f"{pid_file} names pid {pid}, which is not running") from None
    if name != expect:
        raise HostError(f"{pid_file} names pid {pid}, which is {name!r}, not {expect!r}")
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        raise HostError(f"not allowed to signal {expect} (pid {pid}): run as root") from None
    return pid
