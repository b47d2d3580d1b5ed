"""Start one systemd unit's service the way systemd would, for hosts without systemd (the
multi-host test's namespaces): ``python -m tests.deploy.unit_exec UNIT_FILE``, run as root
inside the host.

Done as systemd does it, in this order: ``ExecStartPre=`` (as root), the unit's
``StateDirectory=`` / ``RuntimeDirectory=`` (created, given to ``User=``, with their modes), a
private mount namespace where ``ProtectSystem=strict`` makes everything read-only but the
unit's directories and ``ReadWritePaths=`` (plus ``PrivateTmp=`` and ``ProtectHome=``), the
environment (a clean one, ``Environment=``, then ``EnvironmentFile=``), ``LimitNOFILE=``,
``UMask=``, ``WorkingDirectory=``, then ``User=``/``Group=``/``SupplementaryGroups=`` and
``exec`` of ``ExecStart=``. Other sandbox settings (system call filter, capabilities, ...)
are not applied here; ``systemd-analyze security`` rates them.
"""

from __future__ import annotations

import argparse
import ctypes
import grp
import os
import pwd
import re
import resource
import shlex
import subprocess
import sys
from pathlib import Path

from tests.deploy.units import Unit, load_unit, read_environment_file

CLONE_NEWNS = 0x00020000
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
API_MOUNTS = ("/proc", "/sys", "/dev")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _identity(unit: Unit) -> tuple[int, int, list[int], dict[str, str]]:
    user = unit.one("User")
    if user is None:
        return 0, 0, [], {}
    entry = pwd.getpwnam(user)
    gid = grp.getgrnam(unit.one("Group") or "").gr_gid if unit.one("Group") else entry.pw_gid
    groups = os.getgrouplist(user, gid)
    groups += [grp.getgrnam(name).gr_gid for name in unit.words("SupplementaryGroups")]
    env = {"USER": user, "LOGNAME": user, "HOME": entry.pw_dir, "SHELL": entry.pw_shell}
    return entry.pw_uid, gid, sorted(set(groups)), env


def _make_dirs(unit: Unit, uid: int, gid: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, base in (("StateDirectory", "/var/lib"), ("RuntimeDirectory", "/run")):
        mode = int(unit.one(f"{key}Mode", "0755") or "0755", 8)
        paths = []
        for name in unit.words(key):
            path = Path(base) / name
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, gid)
            path.chmod(mode)
            paths.append(str(path))
        if paths:
            env[key.upper().replace("DIRECTORY", "_DIRECTORY")] = ":".join(paths)
    return env


def _mount_points() -> list[str]:
    """Mount points, unescaped (mountinfo writes a space as \\040)."""
    unescape = re.compile(r"\\([0-7]{3})")
    return [
        unescape.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ]


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _sandbox(unit: Unit) -> None:
    """A private mount namespace with the unit's file-system protections. Nothing may be
    imported from here on: ProtectHome= hides /root, where this test Python may live."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    _mount("--make-rprivate", "/")
    writable = [str(d) for d in unit.writable_dirs()]
    if unit.one("PrivateTmp") in ("yes", "true"):
        for tmp in ("/tmp", "/var/tmp"):
            _mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", tmp)
            writable.append(tmp)
    if unit.one("ProtectHome") in ("yes", "true"):
        for home in ("/home", "/root", "/run/user"):
            if Path(home).is_dir():
                _mount("-t", "tmpfs", "-o", "ro,mode=0755", "tmpfs", home)
    if unit.one("ProtectSystem") != "strict":
        return
    for path in writable:
        if Path(path).exists():
            _mount("--bind", path, path)
    for point in _mount_points():
        if _under(point, list(API_MOUNTS)) or point in writable:
            continue
        subprocess.run(  # a covered mount (under /run, hidden by its tmpfs) has no path
            ["mount", "-o", "remount,bind,ro", point],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _environment(
    unit: Unit, identity_env: dict[str, str], dirs_env: dict[str, str]
) -> dict[str, str]:
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", **identity_env, **dirs_env}
    env.update(unit.environment)
    for path, required in unit.environment_files:
        if path.exists() or required:
            env.update(read_environment_file(path))
    return env


def _limit_files(limit: int) -> None:
    """LimitNOFILE=; where this machine's root lacks CAP_SYS_RESOURCE (some sandboxes), the
    hard limit cannot be raised, so the nearest is applied and said."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    except ValueError:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
        print(f"unit_exec: LimitNOFILE={limit} capped at {hard} here", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("unit", type=Path)
    parser.add_argument("--setenv", action="append", default=[], help="KEY=VALUE (NOTIFY_SOCKET)")
    parser.add_argument(
        "--append", action="append", default=[], help="one more argument for ExecStart="
    )
    args = parser.parse_args()
    unit = load_unit(args.unit)
    for pre in unit.values("ExecStartPre"):
        subprocess.run(shlex.split(pre.lstrip("-+!@:")), check=not pre.startswith("-"))
    uid, gid, groups, identity_env = _identity(unit)
    dirs_env = _make_dirs(unit, uid, gid)
    env = _environment(unit, identity_env, dirs_env)
    env.update(dict(item.split("=", 1) for item in args.setenv))
    _sandbox(unit)
    limit = unit.one("LimitNOFILE")
    if limit:
        _limit_files(int(limit))
    os.umask(int(unit.one("UMask", "0022") or "0022", 8))
    os.chdir(unit.one("WorkingDirectory") or "/")
    if uid:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    argv = unit.exec_start + args.append
    sys.stdout.flush()
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
