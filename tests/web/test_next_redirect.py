"""After login, ``next=`` only ever leads to one of the dashboard's own pages.

Before, a prefix check let ``/%09/evil`` through (a browser drops the tab and reads
``//evil``: another host). Now ``next`` must match an allow-list; whatever string comes in,
what goes out resolves to this host, and the dashboard's own links survive unchanged.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgeorder.ingest.web.access import safe_next
from tests.web.conftest import WebEnv
from tests.web.support import ADMIN_PASSWORD

HOST = "https://ingest.example:8080"
TRICKS = [
    "/%09/evil.example",
    "/%09%09/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%2f/evil.example",
    "%2F%2Fevil.example",
    "https://evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    "/ /evil.example",
    "/@evil.example",
    "/.//evil.example",
    "/devices/../..//evil.example",
    "/devices/x?//evil.example#//evil",
    "/buffer#//evil.example",
    "/%E3%80%82evil.example",
    "/\u3002/evil.example",
    "",
    "evil.example",
]
PAGES = ["/", "/devices/kitchen-01", "/buffer", "/provision", "/?online=1&env=dev&q=kit%20chen"]


def _lands_here(target: str) -> bool:
    """Resolved as a browser resolves a Location header, the target stays on HOST, and
    decoding it (once or twice) shows no way to another host either."""
    for form in (target, unquote(target), unquote(unquote(target))):
        resolved = urlsplit(urljoin(HOST + "/login", form))
        if resolved.netloc != "ingest.example:8080" or resolved.scheme != "https":
            return False
        if form.startswith(("//", "/\\")) or "\\" in form:
            return False
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return False
    return True


@pytest.mark.parametrize("trick", TRICKS)
def test_known_tricks_go_home(trick: str) -> None:
    assert safe_next(trick) == "/"


@pytest.mark.parametrize("page", PAGES)
def test_the_dashboards_own_pages_survive(page: str) -> None:
    assert safe_next(page) == page


@given(st.text(max_size=80))
@example("/%09/evil")
def test_any_string_lands_on_this_host(value: str) -> None:
    target = safe_next(value)
    assert target == "/" or target == value
    assert _lands_here(target)


@given(
    st.lists(
        st.sampled_from(["/", "\\", "%", "09", "2F", "5C", "\t", " ", ".", "..", "@", "evil", ":"]),
        max_size=12,
    ).map("".join)
)
def test_slash_backslash_and_encoding_soups_land_on_this_host(value: str) -> None:
    assert _lands_here(safe_next(value))
    assert _lands_here(safe_next("/" + value))
    assert _lands_here(safe_next(quote(value, safe="")))


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200), st.none() | st.integers())
def test_non_strings_and_anything_ascii(value: str, number: int | None) -> None:
    assert safe_next(number) == "/"
    assert _lands_here(safe_next(value))


async def test_a_login_with_a_trick_next_redirects_home(webenv: WebEnv) -> None:
    for trick in ("/%09/evil.example", "//evil.example", "/\\evil.example"):
        resp = await webenv.client.post(
            "/login",
            data={"username": "admin", "password": ADMIN_PASSWORD, "next": trick},
            allow_redirects=False,
        )
        assert resp.status == 303
        assert resp.headers["Location"] == "/"
    resp = await webenv.client.get("/login", params={"next": "/%09/evil.example"})
    assert 'name="next" value="/"' in await resp.text()
    resp = await webenv.client.post(
        "/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/buffer"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/buffer"
