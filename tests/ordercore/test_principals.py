"""Token specs, their principals and the settings that carry them (pure and files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeorder.ordercore.principals import (
    Principal,
    Role,
    TokenSpecError,
    key_sees_order,
    parse_token,
    parse_tokens,
)
from edgeorder.ordercore.settings import Settings, read_tokens_file

M = "00000000-0000-4000-8000-000000000001"


def test_a_bare_token_is_an_admin_as_before() -> None:
    [token] = parse_tokens(["legacy-secret"])
    assert token.secret == "legacy-secret"
    assert token.principal == Principal("token-1", Role.ADMIN)
    # a bare secret may contain '=' and ':' (base64 padding, for one): still a bare secret
    assert parse_token("c2VjcmV0==:x", "t").principal.role is Role.ADMIN


@pytest.mark.parametrize(
    ("spec", "principal"),
    [
        ("ops=s1:role=admin", Principal("ops", Role.ADMIN)),
        (f"shop=s2:role=merchant:merchant={M}", Principal("shop", Role.MERCHANT, M)),
        ("ana=s3:role=customer:user=u-1", Principal("ana", Role.CUSTOMER, "u-1")),
        ("ingest=s4:role=app", Principal("ingest", Role.APP, "ingest")),
        ("ingest=s5:role=app:app=edge.1", Principal("ingest", Role.APP, "edge.1")),
    ],
)
def test_specs_bind_principals(spec: str, principal: Principal) -> None:
    token = parse_token(spec, "unused")
    assert token.principal == principal
    assert token.secret == spec.split("=", 1)[1].split(":role=")[0]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("=s:role=admin", "NAME=SECRET"),
        ("ops:role=admin", "NAME=SECRET"),
        ("ops=:role=admin", "secret"),
        ("ops=s:role=root", "unknown role 'root'"),
        ("ops=s:role=admin:merchant=x", "takes no scope"),
        ("shop=s:role=merchant", "needs :merchant=<id>"),
        ("shop=s:role=merchant:user=x", "takes :merchant=<id>"),
        ("shop=s:role=merchant:merchant=" + "x" * 37, "1-36"),
        ("ana=s:role=customer", "needs :user=<id>"),
        ("app=s:role=app:app=bad id", "[A-Za-z0-9_.-]"),
        ("bad\x7fsecret", "visible ASCII"),
    ],
)
def test_bad_specs_say_why_without_the_secret(spec: str, says: str) -> None:
    with pytest.raises(TokenSpecError) as info:
        parse_token(spec, "t")
    assert says in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_names_and_secrets_are_unique() -> None:
    with pytest.raises(TokenSpecError, match="used twice"):
        parse_tokens(["a=s1:role=admin", "a=s2:role=app"])
    with pytest.raises(TokenSpecError, match="share one secret"):
        parse_tokens(["a=same:role=admin", "b=same:role=app"])


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_any_visible_ascii_secret_without_a_role_is_a_bare_admin_token(secret: str) -> None:
    if ":role=" in secret or "," in secret:
        return
    token = parse_token(secret, "t")
    assert (token.secret, token.principal.role) == (secret, Role.ADMIN)


def test_the_principal_key_survives_renames_and_rotation() -> None:
    old = parse_token("ingest=old:role=app:app=edge", "t").principal
    new = parse_token("edge-ingest=new:role=app:app=edge", "t").principal
    assert old.key == new.key == "app:edge"


def test_webhook_owners_see_the_orders_of_their_scope() -> None:
    assert key_sees_order("admin", "m", None, None)
    assert key_sees_order("merchant:m", "m", "u", None)
    assert not key_sees_order("merchant:m", "other", "u", None)
    assert key_sees_order("customer:u", "m", "u", None)
    assert not key_sees_order("customer:u", "m", None, None)
    assert key_sees_order("app:edge", "m", "u", "edge")
    assert not key_sees_order("app:edge", "m", "u", None)
    assert not key_sees_order("root", "m", "u", "edge")


def test_settings_from_env_flags_and_a_tokens_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        "# the order core's tokens\n\nshop=s2:role=merchant:merchant=m1\n"
        "  ana=s3:role=customer:user=u-1  \n"
    )
    env = {
        "EDGEORDER_ORDERCORE_DATA_DIR": str(tmp_path),
        "EDGEORDER_ORDERCORE_TOKEN": "ops=s1:role=admin, ingest=s4:role=app",
        "EDGEORDER_ORDERCORE_TOKENS_FILE": str(tokens),
    }
    settings = Settings.from_env(env)
    assert [t.principal.key for t in settings.tokens] == [
        "admin",
        "app:ingest",
        "merchant:m1",
        "customer:u-1",
    ]
    flags = Settings.from_env(env, tokens=["bare"])  # a flag replaces the env var, not the file
    assert [t.principal.name for t in flags.tokens] == ["token-1", "shop", "ana"]


def test_a_bad_tokens_file_line_names_the_file_and_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("ops=s1:role=admin\nshop=s2:role=merchant\n")
    with pytest.raises(ValueError, match=r"tokens:2: token 'shop'"):
        read_tokens_file(tokens)
    tokens.write_text("a=1:role=admin,b=2:role=admin\n")
    with pytest.raises(ValueError, match="one token per line"):
        read_tokens_file(tokens)
    with pytest.raises(ValueError, match="tokens file"):
        read_tokens_file(tmp_path / "missing")
