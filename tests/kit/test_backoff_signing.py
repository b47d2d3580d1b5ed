"""kit.backoff (capped exponential, full jitter) and kit.signing (HMAC-SHA256, constant time)."""

from __future__ import annotations

import random
from itertools import islice

import pytest

from edgeorder.kit.backoff import Backoff, ceiling, delays, floored_jitter, full_jitter
from edgeorder.kit.signing import hex_digest, sign, verify, verify_hex


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    assert [ceiling(n, 1.0, 30.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert ceiling(10_000, 0.5, 60.0) == 60.0  # a long outage cannot overflow


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert [full_jitter(n, 1.0, 30.0, rand=lambda: 1.0) for n in range(7)] == [
        1,
        2,
        4,
        8,
        16,
        30,
        30,
    ]
    assert {full_jitter(n, 1.0, 30.0, rand=lambda: 0.0) for n in range(7)} == {0.0}
    assert full_jitter(3, 1.0, 30.0, rand=lambda: 0.25) == 2.0  # not equal jitter (5.0)


def test_floored_jitter_never_goes_below_its_floor() -> None:
    # the agent re-publishes "every retry_min_s .. retry_max_s": never sooner than the minimum
    assert floored_jitter(0, 5.0, 300.0, lambda: 0.0) == 5.0
    assert floored_jitter(0, 5.0, 300.0, lambda: 1.0) == 10.0
    assert floored_jitter(3, 5.0, 300.0, lambda: 1.0) == 80.0
    assert floored_jitter(40, 5.0, 300.0, lambda: 1.0) == 300.0
    assert floored_jitter(2, 7.0, 7.0, random.random) == 7.0
    rng = random.Random(7)
    backoff = Backoff(5.0, 300.0, rand=rng.random, floor=True)
    drawn = [backoff.next() for _ in range(50)]
    assert min(drawn) >= 5.0
    assert max(drawn) <= 300.0
    assert len(set(drawn)) == len(drawn)  # jittered


def test_delays_are_jittered_and_grow() -> None:
    rng = random.Random(7)
    got = list(islice(delays(0.5, 8.0, rng.random), 40))
    assert all(0 <= d <= min(8.0, 0.5 * 2**n) for n, d in enumerate(got))
    assert len(set(got)) == len(got)  # jittered: no two retries line up
    assert max(got[6:]) > 2.0  # and it does grow


def test_backoff_counts_attempts_and_resets() -> None:
    b = Backoff(2.0, 8.0, rand=lambda: 1.0)
    assert [b.next() for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]
    b.reset()
    assert b.next() == 2.0


@pytest.mark.parametrize(("attempt", "base", "cap"), [(-1, 1.0, 2.0), (0, 0.0, 1.0), (0, 2.0, 1.0)])
def test_bad_ranges_are_refused(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        full_jitter(attempt, base, cap)


def test_backoff_checks_its_range_when_built() -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(5.0, 1.0)


def test_signature_round_trip() -> None:
    header = sign("s3cret", b'{"x":1}', 1_790_000_000)
    assert header.startswith("sha256=")
    assert len(header) == 7 + 64
    assert verify("s3cret", b'{"x":1}', header, 1_790_000_000)
    assert not verify("other", b'{"x":1}', header, 1_790_000_000)
    assert not verify("s3cret", b'{"x":2}', header, 1_790_000_000)
    assert not verify("s3cret", b'{"x":1}', header, 1_790_000_001)  # the timestamp is signed
    assert not verify("s3cret", b'{"x":1}', "sha256=\u00e9", 1_790_000_000)  # no TypeError


def test_plain_hex_digest_verifies_in_any_case() -> None:
    digest = hex_digest("app-secret", b"body")
    assert len(digest) == 64
    assert verify_hex("app-secret", b"body", digest.upper() + " ")
    assert not verify_hex("app-secret", b"body!", digest)
    assert not verify_hex("app-secret", b"body", "caf\u00e9")
