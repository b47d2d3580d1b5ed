"""The fleet page's operator actions and the device page's groups card: selecting devices
(a checkbox per row, "select all shown" for the filtered view), the bulk action form, the
tag and site filters, and the tags/site editor.

The checkboxes belong to the bulk form through their ``form`` attribute, so the live-updated
table (a region ``live.js`` replaces) sits outside the form; ``live.js`` keeps what is ticked
across a refresh (``data-keep``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edgeorder.ingest.domain.groups import SITE_MAX_CHARS, TAGS_MAX
from edgeorder.ingest.store.dashboard import FleetFilter, Row
from edgeorder.ingest.web.markup import Markup, attrs, csrf_field, esc, join

__all__ = [
    "BULK_FORM_ID",
    "FleetGroups",
    "bulk_form",
    "group_filters",
    "groups_card",
    "groups_cell",
    "select_box",
]

BULK_FORM_ID = "bulk"


@dataclass(frozen=True)
class FleetGroups:
    """What the fleet page offers: the tags and sites in use (with device counts)."""

    csrf: str
    tags: Sequence[tuple[str, int]] = field(default_factory=list)
    sites: Sequence[tuple[str, int]] = field(default_factory=list)


def _options(values: Sequence[tuple[str, int]], current: str | None, any_label: str) -> Markup:
    rest = join(
        Markup(f'<option value="{esc(v)}"{attrs(selected=v == current)}>{esc(v)} ({n})</option>')
        for v, n in values
    )
    return Markup(f'<option value="">{esc(any_label)}</option>{rest}')


def group_filters(flt: FleetFilter, groups: FleetGroups) -> Markup:
    """The tag and site selects of the fleet's filter form."""
    return Markup(
        f'<select name="tag" aria-label="Tag">{_options(groups.tags, flt.tag, "any tag")}</select>'
        f'<select name="site" aria-label="Site">{_options(groups.sites, flt.site, "any site")}'
        "</select>"
    )


def select_box(device_id: str) -> Markup:
    """The row's checkbox, at the start of its Device cell."""
    return Markup(
        f'<input type="checkbox" name="device" value="{esc(device_id)}" '
        f'form="{BULK_FORM_ID}" data-keep aria-label="select {esc(device_id)}"> '
    )


def groups_cell(row: Row) -> Markup:
    tags = join(Markup(f'<span class="tag">{esc(t)}</span>') for t in row.get("tags", ()))
    site = row.get("site") or ""
    where = Markup(f'<span class="site">{esc(site)}</span> ') if site else Markup("")
    return Markup(f'<td data-label="Groups" class="device-groups">{where}{tags}</td>')


def bulk_form(groups: FleetGroups, back: str) -> Markup:
    """One action for every ticked device (``POST /devices/bulk``); ``back`` is the filtered
    fleet URL to return to."""
    actions = (
        ("enable", "enable"),
        ("disable", "disable"),
        ("env_dev", "set env dev (test orders)"),
        ("env_prod", "set env prod"),
        ("add_tag", "add tag"),
        ("remove_tag", "remove tag"),
    )
    options = join(Markup(f'<option value="{v}">{esc(label)}</option>') for v, label in actions)
    known = join(Markup(f'<option value="{esc(t)}">') for t, _ in groups.tags)
    return Markup(
        f'<form method="post" action="/devices/bulk" id="{BULK_FORM_ID}" class="bulk card">'
        f'{csrf_field(groups.csrf)}<input type="hidden" name="back" value="{esc(back)}">'
        '<label><input type="checkbox" id="select-all" aria-label="select all shown"> '
        "all shown</label>"
        f'<select name="action" aria-label="Bulk action">{options}</select>'
        '<input name="tag" placeholder="tag" list="fleet-tags" aria-label="Tag" maxlength="32">'
        f'<datalist id="fleet-tags">{known}</datalist>'
        '<button type="submit">Apply to selected</button></form>'
    )


def groups_card(dev: Row, url: str, csrf: str) -> Markup:
    """The device page's tags and site editor (``POST /devices/ID/groups``)."""
    tags = " ".join(dev.get("tags", ()))
    return Markup(
        f'<section class="card" id="groups"><h2>Tags and site</h2>'
        f'<form method="post" action="{esc(url)}/groups" class="groups">{csrf_field(csrf)}'
        f'<label>Tags <input name="tags" value="{esc(tags)}" '
        f'placeholder="kitchen floor-2" aria-describedby="tags-help"></label>'
        f'<small id="tags-help" class="muted">up to {TAGS_MAX}, separated by spaces or commas'
        "</small>"
        f'<label>Site <input name="site" maxlength="{SITE_MAX_CHARS}" '
        f'value="{esc(dev.get("site") or "")}"></label>'
        '<button type="submit">Save</button></form></section>'
    )
