"""Files only their owner may read, whatever the process umask.

ingest's and the order core's SQLite databases hold password hashes, session tokens and the
webhook secret. SQLite creates a database with mode ``0644 & ~umask`` and gives its ``-wal``,
``-shm`` and ``-journal`` files the database's own mode, so creating the database file first,
``0600``, is enough to keep every one of them private. Stdlib only: every part may import it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "make_private_dir", "make_private_file"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_SIDECARS = ("-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; a new last directory is ``0700``."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def make_private_file(path: Path) -> list[Path]:
    """Create ``path`` empty with mode ``0600`` if it does not exist; narrow it and its SQLite
    sidecar files if they exist: open to everyone (e.g. ``0644``, as SQLite makes them) ->
    ``0600``; group-writable -> group read at most. A deliberate ``0640`` stays.

    Returns the files whose mode was narrowed (so the caller can say so once).
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # os.open's mode is filtered by the umask
        os.close(fd)
    narrowed: list[Path] = []
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        wanted = _narrowed(mode)
        if wanted != mode:
            candidate.chmod(wanted)
            narrowed.append(candidate)
    return narrowed


def _narrowed(mode: int) -> int:
    if mode & 0o007:  # others may read it: nobody meant to share it with a group either
        return mode & 0o700
    return mode & 0o750
