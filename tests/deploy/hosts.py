"""Test hosts on one machine: a Linux network namespace each (on one bridged LAN), and a
mount namespace whose ``/etc``, ``/var/lib``, ``/var/log``, ``/opt``, ``/usr/local`` and
``/root`` are overlays (writes land in the host's own directory, the machine's files stay as
they are) and whose ``/run`` is empty. Commands run as root inside with ``nsenter``, so the
README's steps run there verbatim, with their real paths, users and addresses.

A host is held open by one ``sleep`` process (the namespaces live as long as it does);
tearing down kills every process in the host's network namespace, then the namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

OVERLAID = ("/etc", "/var/lib", "/var/log", "/opt", "/usr/local", "/root")
LAN_PREFIX = 24
LOGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NamespacesUnavailable(RuntimeError):
    """This machine (or user) cannot create network namespaces; the message says why."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NamespacesUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def namespaces_unavailable() -> str | None:
    """None if network and mount namespaces can be made here, else the reason."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    name = f"eo-probe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", name)
    except (NamespacesUnavailable, FileNotFoundError) as exc:
        return str(exc)
    try:
        probe = subprocess.run(
            ["ip", "netns", "exec", name, "unshare", "--mount", "true"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 0:
            return f"mount namespaces: {probe.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    return None


@dataclass
class Host:
    """One machine of the test LAN: ``name`` (also its hostname-ish label) at ``address``."""

    name: str
    address: str
    netns: str
    root: Path
    holder: subprocess.Popen[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.holder is not None
        return self.holder.pid

    def path(self, inside: str) -> Path:
        """Where the host's ``inside`` path is, seen from the test (through /proc/PID/root)."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def command(self, argv: list[str], cwd: Path | str = "/") -> list[str]:
        """``argv`` as a process of this host (root, in its network and mount namespaces)."""
        return ["nsenter", "-t", str(self.pid), "-m", "-n", f"--wd={cwd}", "--", *argv]

    def shell(
        self, script: str, *, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with bash as root in /root, in a login-like clean environment."""
        base = {"PATH": LOGIN_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
        argv = ["env", "-i", *(f"{k}={v}" for k, v in {**base, **(env or {})}.items())]
        argv += ["bash", "-euo", "pipefail", "-c", f"cd /root\n{script}"]
        result = subprocess.run(
            self.command(argv), capture_output=True, text=True, check=False, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name}: exit {result.returncode} from:\n{script}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def write(self, inside: str, data: bytes, mode: int = 0o644) -> None:
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    def processes(self) -> list[int]:
        """Every process in this host's network namespace."""
        try:
            ns = os.readlink(f"/proc/{self.pid}/ns/net")
        except OSError:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/net") == ns:
                        found.append(int(entry))
                except OSError:
                    continue
        return found


@dataclass
class Lan:
    """A bridged /24 in a namespace of its own, and the hosts plugged into it."""

    prefix: str
    workdir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.switch = f"eo-{self.tag}-lan"
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def add(self, name: str, last_octet: int) -> Host:
        netns = f"eo-{self.tag}-{name}"
        address = f"{self.prefix}.{last_octet}"
        _ip("netns", "add", netns)
        port = f"v{self.tag}{last_octet}"[:15]
        _ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", port)
        _ip("link", "set", port, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{address}/{LAN_PREFIX}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        host = Host(name, address, netns, self.workdir / name)
        host.holder = self._hold(host)
        self.hosts[name] = host
        return host

    def _hold(self, host: Host) -> subprocess.Popen[str]:
        mounts = []
        for path in OVERLAID:
            layer = host.root / path.strip("/").replace("/", "-")
            (layer / "upper").mkdir(parents=True)
            (layer / "work").mkdir()
            mounts.append(
                f"mount -t overlay overlay -o lowerdir={path},upperdir={layer}/upper,"
                f"workdir={layer}/work {path}"
            )
        mounts.append("mount -t tmpfs -o mode=0755 tmpfs /run")
        script = " && ".join(mounts) + " && echo ready && exec sleep infinity"
        holder = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                host.netns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "ready":
            holder.wait()
            assert holder.stderr is not None
            raise NamespacesUnavailable(f"host {host.name}: {holder.stderr.read()}")
        return holder

    def close(self) -> None:
        for host in self.hosts.values():
            for pid in host.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if host.holder is not None:
                host.holder.wait(timeout=10)
            subprocess.run(["ip", "netns", "del", host.netns], check=False)
        subprocess.run(["ip", "netns", "del", self.switch], check=False)
