"""Mosquitto's password-file and ACL-file formats, written and read (pure; no I/O).

``edgeorder broker-auth`` renders them for a production Mosquitto and the embedded broker
enforces the very same files, so the demo and production refuse the same things.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Flag, auto

from edgeorder import protocol as p
from edgeorder.protocol.topics import DEVICE_READS, DEVICE_WRITES

__all__ = [
    "Access",
    "Acl",
    "AclRule",
    "filter_within",
    "parse_acl",
    "parse_passwd",
    "render_acl",
    "render_passwd",
    "topic_matches",
]


HA_PREFIX = "homeassistant"
"""Home Assistant's default discovery prefix (``ingest.domain.homeassistant``)."""


def render_passwd(hashes: dict[str, str]) -> str:
    """Mosquitto password-file lines ``username:$7$...``, sorted."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(hashes.items()))


def render_acl(
    service_accounts: Iterable[str], ha_prefix: str = HA_PREFIX, observers: Iterable[str] = ()
) -> str:
    """The ACL: full device-tree access for service accounts, and Home Assistant's discovery
    tree ``ha_prefix/#`` (ingest publishes discovery there, reads its birth message); read
    access to both for observers (Home Assistant), which write only ``ha_prefix/status`` (its
    birth and last will); own-topics-only for devices (ARCHITECTURE.md: a device writes only
    its own events, presence, telemetry and config/reported, and reads only its own status and
    config -- so never anything under ``ha_prefix/``)."""
    root = p.TOPIC_ROOT
    lines = ["# written by 'edgeorder broker-auth'; do not edit by hand", ""]
    for user in sorted(service_accounts):
        lines += [f"user {user}", f"topic readwrite {root}/#", f"topic readwrite {ha_prefix}/#", ""]
    for user in sorted(observers):
        lines += [
            f"user {user}",
            f"topic read {root}/#",
            f"topic read {ha_prefix}/#",
            f"topic write {ha_prefix}/status",
            "",
        ]
    lines.append("# devices: username = device_id")
    lines += [f"pattern write {root}/%u/{ch.value}" for ch in DEVICE_WRITES]
    lines += [f"pattern read {root}/%u/{ch.value}" for ch in DEVICE_READS]
    return "\n".join(lines) + "\n"


class Access(Flag):
    READ = auto()
    WRITE = auto()
    DENY = auto()


_ACCESS_WORDS = {
    "read": Access.READ,
    "write": Access.WRITE,
    "readwrite": Access.READ | Access.WRITE,
    "deny": Access.DENY,
}


@dataclass(frozen=True)
class AclRule:
    """One ``topic``/``pattern`` line; ``user`` is None for pattern rules (everyone)."""

    user: str | None
    access: Access
    topic: str
    is_pattern: bool


def parse_passwd(text: str) -> dict[str, str]:
    """``username:hash`` per line -> {username: hash}; blank lines and # comments skipped."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, _, hashed = line.partition(":")
        entries[user] = hashed
    return entries


def parse_acl(text: str) -> list[AclRule]:
    """Mosquitto ACL lines: ``user U``, ``topic [read|write|readwrite|deny] T``, ``pattern ...``."""
    rules: list[AclRule] = []
    user: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "user":
            user = rest
            continue
        if word not in ("topic", "pattern"):
            raise ValueError(f"ACL line {number}: unknown directive {word!r}")
        access_word, _, topic = rest.partition(" ")
        if access_word in _ACCESS_WORDS and topic:
            access = _ACCESS_WORDS[access_word]
        else:  # "topic T" alone means readwrite
            access, topic = Access.READ | Access.WRITE, rest
        is_pattern = word == "pattern"
        rules.append(AclRule(None if is_pattern else user, access, topic.strip(), is_pattern))
    return rules


def topic_matches(filter_: str, topic: str) -> bool:
    """MQTT wildcard match of a concrete ``topic`` against ``filter_``."""
    f_levels, t_levels = filter_.split("/"), topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels) or level not in ("+", t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)


def filter_within(acl_filter: str, sub_filter: str) -> bool:
    """True if every topic matched by ``sub_filter`` is also matched by ``acl_filter``."""
    a_levels, s_levels = acl_filter.split("/"), sub_filter.split("/")
    for i, level in enumerate(a_levels):
        if level == "#":
            return True
        if i >= len(s_levels):
            return False
        sub = s_levels[i]
        if sub == "#" or (sub == "+" and level != "+") or level not in ("+", sub):
            return False
    return len(a_levels) == len(s_levels)


class Acl:
    """Decides access the way Mosquitto's acl_file does: deny wins, otherwise any grant."""

    def __init__(self, rules: Iterable[AclRule]) -> None:
        self.rules = list(rules)

    def _applicable(self, username: str | None, client_id: str) -> Iterable[tuple[Access, str]]:
        for rule in self.rules:
            if rule.is_pattern:
                if username is None and "%u" in rule.topic:
                    continue
                topic = rule.topic.replace("%u", username or "").replace("%c", client_id)
                yield rule.access, topic
            elif rule.user is not None and rule.user == username:
                yield rule.access, rule.topic

    def allows(
        self,
        username: str | None,
        client_id: str,
        topic: str,
        access: Access,
        *,
        is_filter: bool = False,
    ) -> bool:
        """May this client read (receive/subscribe) or write (publish) ``topic``?"""
        match = filter_within if is_filter else topic_matches
        granted = False
        for rule_access, rule_topic in self._applicable(username, client_id):
            if not match(rule_topic, topic):
                continue
            if Access.DENY in rule_access:
                return False
            granted = granted or access in rule_access
        return granted
