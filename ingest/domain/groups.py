"""Tags and sites that group devices (pure: the limits and their normal form).

A tag is a short word (``kitchen``, ``floor-2``, ``pilot.2026``); a device has at most
``TAGS_MAX`` of them. A site is free text naming where a device is (``Lisbon store``), at most
``SITE_MAX_CHARS``; empty means none. Both are compared as written (case included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "SITE_MAX_CHARS",
    "TAGS_MAX",
    "TAG_PATTERN",
    "check_site",
    "check_tag",
    "check_tags",
]

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}$"
_TAG_RE = re.compile(TAG_PATTERN)
TAGS_MAX = 16
SITE_MAX_CHARS = 64


def check_tag(tag: str) -> str:
    """``tag`` stripped; ValueError unless it is 1-32 of ``[A-Za-z0-9_.:-]`` (a letter or
    digit first)."""
    tag = tag.strip()
    if _TAG_RE.fullmatch(tag) is None:
        raise ValueError(
            f"tag {tag[:40]!r}: 1-32 of letters, digits and _.:- (starting with a letter or digit)"
        )
    return tag


def check_tags(tags: Iterable[str]) -> list[str]:
    """Each tag checked, once, sorted; ValueError past ``TAGS_MAX``."""
    found = sorted({check_tag(t) for t in tags})
    if len(found) > TAGS_MAX:
        raise ValueError(f"a device has at most {TAGS_MAX} tags, not {len(found)}")
    return found


def check_site(site: str) -> str:
    """``site`` stripped; ValueError past ``SITE_MAX_CHARS`` or with control characters."""
    site = site.strip()
    if len(site) > SITE_MAX_CHARS:
        raise ValueError(f"site must be at most {SITE_MAX_CHARS} characters, not {len(site)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in site):
        raise ValueError("site must not contain control characters")
    return site
