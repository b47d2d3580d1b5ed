"""Orders and rejections per hour as an inline SVG bar chart (no library, no script)."""

from __future__ import annotations

from collections.abc import Sequence

from edgeorder.ingest.web.markup import Markup, esc

__all__ = ["hourly_chart"]

_W, _H, _PAD_L, _PAD_B, _PAD_T = 720, 180, 28, 22, 10


def hourly_chart(counts: Sequence[tuple[str, int, int]]) -> Markup:
    """``counts``: (hour ``YYYY-MM-DDTHH``, orders, rejections), oldest first.

    Each hour gets a pair of bars (orders, rejections) on a shared y axis; every bar has a
    ``<title>`` so the numbers are readable on hover and by screen readers.
    """
    top = max([1, *(max(o, r) for _, o, r in counts)])
    slot = (_W - _PAD_L) / max(1, len(counts))
    bar = max(1.0, slot / 2 - 1)
    plot_h = _H - _PAD_B - _PAD_T
    parts: list[str] = [
        f'<line x1="{_PAD_L}" y1="{_H - _PAD_B}" x2="{_W}" y2="{_H - _PAD_B}" class="axis"/>',
        f'<text x="{_PAD_L - 4}" y="{_PAD_T + 8}" class="tick" text-anchor="end">{top}</text>',
        f'<text x="{_PAD_L - 4}" y="{_H - _PAD_B}" class="tick" text-anchor="end">0</text>',
    ]
    for n, (hour, orders, rejected) in enumerate(counts):
        x = _PAD_L + n * slot
        for offset, value, cls, label in (
            (0.0, orders, "orders", "orders"),
            (bar, rejected, "rejections", "rejected"),
        ):
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{_H - _PAD_B - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" class="{cls}" data-hour="{esc(hour)}" data-value="{value}">'
                f"<title>{esc(hour[11:13])}:00 UTC — {value} {label}</title></rect>"
            )
        if n % 3 == 0:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{_H - 6}" class="tick" '
                f'text-anchor="middle">{esc(hour[11:13])}h</text>'
            )
    total_o = sum(o for _, o, _ in counts)
    total_r = sum(r for _, _, r in counts)
    return Markup(
        f'<figure class="chart"><svg viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="Orders and rejections per hour, last 24 hours">{"".join(parts)}</svg>'
        f'<figcaption><span class="key orders"></span> orders ({total_o}) '
        f'<span class="key rejections"></span> rejections ({total_r}) — per hour, '
        f"last 24 h (UTC)</figcaption></figure>"
    )
