"""Who may connect and what they may publish or subscribe to, for any broker (pure).

The rules are ARCHITECTURE.md's, the same ones ``edgeorder broker-auth`` writes into
Mosquitto's ``acl_file``: a service account (ingest) reads and writes every device topic and
Home Assistant's discovery tree (``homeassistant/#`` or the configured prefix); an observer
account (Home Assistant) reads them and writes only Home Assistant's own birth topic
(``homeassistant/status``); a device, whose MQTT username is its device_id, writes only its
own events, presence, telemetry and config/reported, and reads only its own status and
config. A broker that asks over HTTP (EMQX's HTTP authorizer, ``ingest.web.broker_hooks``)
gets the very same answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from edgeorder import protocol as p
from edgeorder.ingest.domain.mosquitto_files import HA_PREFIX, Access, Acl, AclRule
from edgeorder.protocol.topics import DEVICE_READS, DEVICE_WRITES

__all__ = ["AccountRole", "BrokerAction", "BrokerRole", "acl_rules", "authorize", "unshared"]

BrokerAction = Literal["publish", "subscribe"]
AccountRole = Literal["service", "observer"]
"""An account that is not a device: ingest's own (``service``) or a read-only one."""
BrokerRole = Literal["service", "observer", "device"]
_SHARE_PREFIX = "$share/"
_QUEUE_PREFIX = "$queue/"


def acl_rules(
    service_accounts: Iterable[str], ha_prefix: str = HA_PREFIX, observers: Iterable[str] = ()
) -> list[AclRule]:
    """The broker's rules: full device-tree and Home Assistant discovery access per service
    account, read access to both (and Home Assistant's birth topic to write) per observer, own
    topics per device (``%u``: the username)."""
    root = p.TOPIC_ROOT
    rules = [
        AclRule(user, Access.READ | Access.WRITE, tree, False)
        for user in sorted(service_accounts)
        for tree in (f"{root}/#", f"{ha_prefix}/#")
    ]
    for user in sorted(observers):
        rules += [
            AclRule(user, Access.READ, f"{root}/#", False),
            AclRule(user, Access.READ, f"{ha_prefix}/#", False),
            AclRule(user, Access.WRITE, f"{ha_prefix}/status", False),
        ]
    rules += [AclRule(None, Access.WRITE, f"{root}/%u/{ch.value}", True) for ch in DEVICE_WRITES]
    rules += [AclRule(None, Access.READ, f"{root}/%u/{ch.value}", True) for ch in DEVICE_READS]
    return rules


def unshared(topic_filter: str) -> str | None:
    """The filter a shared subscription (``$share/GROUP/FILTER``, ``$queue/FILTER``) really
    subscribes to; the filter itself when it is not shared; None when it is malformed."""
    if topic_filter.startswith(_QUEUE_PREFIX):
        return topic_filter[len(_QUEUE_PREFIX) :] or None
    if topic_filter.startswith(_SHARE_PREFIX):
        group, sep, rest = topic_filter[len(_SHARE_PREFIX) :].partition("/")
        if not group or not sep or not rest or any(c in group for c in "+#"):
            return None
        return rest
    return topic_filter


def authorize(
    acl: Acl,
    username: str | None,
    client_id: str,
    action: BrokerAction,
    topic: str,
    *,
    may_share: bool = True,
) -> bool:
    """May ``username`` publish on (``publish``) or subscribe to (``subscribe``) ``topic``?
    ``may_share=False`` (an observer) refuses shared subscriptions: a member of ingest's
    group would take a share of the events, which reading them does not allow."""
    if not username:
        return False
    if action == "publish":
        if "+" in topic or "#" in topic or topic.startswith("$"):
            return False  # a topic name, never a filter or a broker topic
        return acl.allows(username, client_id, topic, Access.WRITE)
    real = unshared(topic)
    if real is None or (real != topic and not may_share):
        return False
    return acl.allows(username, client_id, real, Access.READ, is_filter=True)
