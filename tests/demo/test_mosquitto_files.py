"""The embedded broker's reading of Mosquitto's passwd and ACL formats (pure)."""

from __future__ import annotations

import pytest

from edgeorder.ingest.domain.mosquitto_files import (
    Access,
    Acl,
    filter_within,
    parse_acl,
    parse_passwd,
    topic_matches,
)

ACL = """
# service account
user ingest
topic readwrite edgeorder/v1/devices/#

pattern write edgeorder/v1/devices/%u/events
pattern write edgeorder/v1/devices/%u/presence
pattern read edgeorder/v1/devices/%u/status
pattern read edgeorder/v1/devices/%u/config
"""


@pytest.fixture
def acl() -> Acl:
    return Acl(parse_acl(ACL))


def test_passwd_lines() -> None:
    assert parse_passwd("# c\nkitchen-01:$7$101$a$b\n\ningest:$7$x\n") == {
        "kitchen-01": "$7$101$a$b",
        "ingest": "$7$x",
    }


def test_device_writes_only_its_own_events(acl: Acl) -> None:
    assert acl.allows("k1", "k1", "edgeorder/v1/devices/k1/events", Access.WRITE)
    assert not acl.allows("k1", "k1", "edgeorder/v1/devices/k2/events", Access.WRITE)
    assert not acl.allows("k1", "k1", "edgeorder/v1/devices/k1/status", Access.WRITE)


def test_device_reads_only_its_own_status(acl: Acl) -> None:
    assert acl.allows("k1", "k1", "edgeorder/v1/devices/k1/status", Access.READ)
    assert not acl.allows("k1", "k1", "edgeorder/v1/devices/k2/status", Access.READ)
    assert not acl.allows("k1", "k1", "edgeorder/v1/devices/+/status", Access.READ, is_filter=True)
    assert not acl.allows("k1", "k1", "#", Access.READ, is_filter=True)


def test_service_account_reads_and_writes_everything_below_devices(acl: Acl) -> None:
    assert acl.allows("ingest", "i", "edgeorder/v1/devices/+/events", Access.READ, is_filter=True)
    assert acl.allows("ingest", "i", "edgeorder/v1/devices/k9/status", Access.WRITE)
    assert not acl.allows("ingest", "i", "other/topic", Access.WRITE)


def test_anonymous_gets_nothing(acl: Acl) -> None:
    assert not acl.allows(None, "x", "edgeorder/v1/devices/x/events", Access.WRITE)


def test_deny_wins() -> None:
    acl = Acl(parse_acl("user a\ntopic readwrite t/#\ntopic deny t/secret\n"))
    assert acl.allows("a", "c", "t/open", Access.WRITE)
    assert not acl.allows("a", "c", "t/secret", Access.READ)


def test_unknown_directive_is_an_error() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_acl("grant all\n")


@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/+", "a/b/c", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_matches(flt: str, topic: str, expected: bool) -> None:
    assert topic_matches(flt, topic) is expected


@pytest.mark.parametrize(
    ("acl_filter", "sub", "expected"),
    [
        ("a/#", "a/+/c", True),
        ("a/+/c", "a/+/c", True),
        ("a/x/c", "a/+/c", False),
        ("a/+/c", "a/#", False),
        ("a/b", "a/b", True),
    ],
)
def test_filter_within(acl_filter: str, sub: str, expected: bool) -> None:
    assert filter_within(acl_filter, sub) is expected
