"""Where the order core will not POST a webhook: link-local (cloud metadata at
169.254.169.254), unspecified and multicast addresses, however they are spelled.

A subscription names a URL; the order core then POSTs signed order events there on the
subscriber's say-so. Loopback and private addresses stay allowed (ingest on the same host or
network is the order core's own subscriber). The check runs twice: at ``POST /api/webhooks`` on
the URL's literal address (``refused_target``), and at every delivery on the addresses a host
*name* resolves to (``GuardedResolver``), so neither a literal in another spelling nor a name
pointing at such an address gets a POST.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

__all__ = ["GuardedResolver", "refused_address", "refused_target"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _unwrapped(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (IPv4-mapped ``::ffff:a.b.c.d``, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refused_address(address: Address) -> str | None:
    """Why no webhook may go to ``address``, or None."""
    inner = _unwrapped(address)
    if inner.is_link_local or inner.is_unspecified or inner.is_multicast:
        return f"{address} is a link-local, unspecified or multicast address"
    return None


def literal_address(host: str) -> Address | None:
    """The address a host names literally, in every form a resolver takes for one: dotted
    quads, IPv6, and the legacy IPv4 forms ``inet_aton`` reads (``2852039166``,
    ``0251.0376.0251.0376``, ``0xa9.254.169.254``), with or without a trailing dot."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refused_target(url: str) -> str | None:
    """Why ``url``'s host, read as a literal address, may not be a webhook target."""
    host = urlsplit(url).hostname or ""
    address = literal_address(host)
    if address is None:
        return None  # a name: its addresses are checked at each delivery
    why = refused_address(address)
    return None if why is None else f"webhook URL host {host}: {why}"


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver with the refused addresses left out; a name that resolves only to
    such addresses fails to connect (the delivery is retried, then given up, as any other)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed = []
        for result in await self._inner.resolve(host, port, family):
            try:
                address = ipaddress.ip_address(result["host"])
            except ValueError:
                continue
            if refused_address(address) is None:
                allowed.append(result)
        if not allowed:
            raise OSError(f"{host} resolves only to addresses webhooks may not reach")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
