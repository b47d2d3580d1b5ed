"""Who a bearer token speaks for, and what that principal may see and change. Pure.

The BlackBox seed has two perspectives on an order: ``sent`` (the buyer's) and ``received``
(the seller's). A token is bound to one principal:

- ``admin``: both perspectives on every order, the catalog, every webhook;
- ``merchant`` (a ``MerchantId``): the orders it received; runs their lifecycle;
- ``customer`` (a ``UserId``): the orders it sent; may cancel them;
- ``app`` (an ``AppId``): a sales channel that checks out for its buyers (ingest is one: it
  orders for the owners of its devices). It sees, as sent orders, the orders it created, and
  may cancel them for the buyer. Nuvemshop's ``app_id`` of an order is the same idea.

Token spec (command line, environment, tokens file): ``NAME=SECRET:role=ROLE[:KEY=VALUE]``
with ``merchant=<MerchantId>`` for a merchant, ``user=<UserId>`` for a customer and an optional
``app=<AppId>`` for an app (default: NAME). A spec without ``:role=`` is a bare SECRET and
binds to ``admin``, as every token did before principals existed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BUYER_ROLES",
    "Principal",
    "Role",
    "Token",
    "TokenSpecError",
    "key_sees_order",
    "parse_token",
    "parse_tokens",
]

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
APP_ID = NAME
SECRET = re.compile(r"^[!-+\--~]{1,512}$")  # visible ASCII but ',' (the list separator)
SCOPE_MAX = {"merchant": 36, "user": 200, "app": 64}


class Role(StrEnum):
    ADMIN = "admin"
    MERCHANT = "merchant"
    CUSTOMER = "customer"
    APP = "app"


BUYER_ROLES = frozenset({Role.CUSTOMER, Role.APP})
"""Roles that act for the buyer: the ``sent`` perspective, cancel as the user."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request speaks for. ``scope`` is the MerchantId, UserId or AppId (None: admin)."""

    name: str
    role: Role
    scope: str | None = None

    @property
    def key(self) -> str:
        """Stable identity across token renames and rotations: ``role`` or ``role:scope``.

        Idempotency keys and webhook subscriptions belong to it, so a new secret or token
        name for the same principal keeps replaying its retries and owning its webhooks.
        """
        return self.role.value if self.scope is None else f"{self.role.value}:{self.scope}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def order_column(self) -> tuple[str, str] | None:
        """The orders column and value that bound this principal's view (None: all orders)."""
        if self.scope is None:
            return None
        return (_COLUMNS[self.role], self.scope)

    def sees_side(self, side: str) -> bool:
        """Whether this principal may use the ``sent`` or ``received`` perspective."""
        if self.role is Role.ADMIN:
            return True
        if side == "received":
            return self.role is Role.MERCHANT
        return self.role in BUYER_ROLES

    def owns_order(self, merchant_id: str, user_id: str | None, app_id: str | None) -> bool:
        """Whether an order (by its merchant, buyer and creating app) is in this scope."""
        if self.role is Role.ADMIN:
            return True
        owner = {Role.MERCHANT: merchant_id, Role.CUSTOMER: user_id, Role.APP: app_id}
        return owner[self.role] == self.scope


_COLUMNS = {Role.MERCHANT: "merchant_id", Role.CUSTOMER: "user_id", Role.APP: "app_id"}


def key_sees_order(key: str, merchant_id: str, user_id: str | None, app_id: str | None) -> bool:
    """Whether the principal with ``Principal.key`` ``key`` (a webhook's owner) sees an order."""
    role, _, scope = key.partition(":")
    if role == Role.ADMIN:
        return True
    owner = {"merchant": merchant_id, "customer": user_id, "app": app_id}.get(role)
    return owner is not None and owner == scope


@dataclass(frozen=True, slots=True)
class Token:
    """A configured bearer token and the principal it speaks for."""

    secret: str
    principal: Principal


class TokenSpecError(ValueError):
    """A token spec that cannot be parsed; the message never contains the secret."""


def _scope(role: Role, name: str, rest: str) -> str | None:
    key, sep, value = rest.partition("=")
    wanted = {Role.MERCHANT: "merchant", Role.CUSTOMER: "user", Role.APP: "app"}.get(role)
    if wanted is None:
        if rest:
            raise TokenSpecError(f"token {name!r}: role admin takes no scope")
        return None
    if not rest:
        if role is Role.APP:
            return name
        raise TokenSpecError(f"token {name!r}: role {role} needs :{wanted}=<id>")
    if not sep or key != wanted:
        raise TokenSpecError(f"token {name!r}: role {role} takes :{wanted}=<id>, not {key!r}")
    if not 1 <= len(value) <= SCOPE_MAX[wanted] or ":" in value:
        raise TokenSpecError(
            f"token {name!r}: {wanted} must be 1-{SCOPE_MAX[wanted]} characters without ':'"
        )
    if role is Role.APP and not APP_ID.match(value):
        raise TokenSpecError(f"token {name!r}: app must be 1-64 of [A-Za-z0-9_.-]")
    return value


def parse_token(spec: str, default_name: str) -> Token:
    """One token spec (see the module docstring); ``default_name`` names a bare token."""
    spec = spec.strip()
    if ":role=" not in spec:
        if not SECRET.match(spec):
            raise TokenSpecError(f"token {default_name!r}: must be 1-512 visible ASCII characters")
        return Token(spec, Principal(default_name, Role.ADMIN))
    head, _, tail = spec.partition(":role=")
    name, sep, secret = head.partition("=")
    if not sep or not NAME.match(name):
        raise TokenSpecError("a token with :role= must start NAME=SECRET (NAME: [A-Za-z0-9_.-])")
    if not SECRET.match(secret):
        raise TokenSpecError(f"token {name!r}: the secret must be 1-512 visible ASCII characters")
    role_text, _, rest = tail.partition(":")
    try:
        role = Role(role_text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise TokenSpecError(
            f"token {name!r}: unknown role {role_text!r}; one of {roles}"
        ) from None
    return Token(secret, Principal(name, role, _scope(role, name, rest)))


def parse_tokens(specs: list[str]) -> list[Token]:
    """Every spec parsed; bare tokens are named ``token-1``, ``token-2``, ... by position.

    Names and secrets must be unique: two principals behind one secret would be ambiguous.
    """
    tokens = [parse_token(spec, f"token-{i}") for i, spec in enumerate(specs, start=1)]
    names = [t.principal.name for t in tokens]
    for name in names:
        if names.count(name) > 1:
            raise TokenSpecError(f"token name {name!r} is used twice")
    secrets = [t.secret for t in tokens]
    if len(set(secrets)) != len(secrets):
        raise TokenSpecError("two tokens share one secret")
    return tokens
