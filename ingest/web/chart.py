"""Inline SVG charts (no library, no script): orders and rejections per hour as bars, and a
device's readings over time as lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from edgeorder.ingest.web.markup import Markup, esc

__all__ = ["hourly_chart", "series_chart"]

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


_SW, _SH, _SPAD_L = 720, 120, 52


def series_chart(
    name: str, points: Sequence[tuple[float, float]], start: float, end: float, caption: str
) -> Markup:
    """One reading over time as an inline SVG line: ``points`` are (epoch seconds, value),
    oldest first, plotted from ``start`` to ``end`` on a y axis from the lowest to the highest
    value. Each point has a ``<title>`` with its time and value (hover, screen readers)."""
    lo = min((v for _, v in points), default=0.0)
    hi = max((v for _, v in points), default=1.0)
    if hi == lo:  # a steady reading: a flat line in the middle, not along the top
        lo, hi = lo - 1, hi + 1
    span_y, span_x = hi - lo, (end - start) or 1.0
    plot_w, plot_h = _SW - _SPAD_L - 8, _SH - _PAD_B - _PAD_T

    def xy(t: float, v: float) -> tuple[float, float]:
        return _SPAD_L + plot_w * (t - start) / span_x, _PAD_T + plot_h * (hi - v) / span_y

    coords = [xy(t, v) for t, v in points]
    parts = [
        f'<line x1="{_SPAD_L}" y1="{_SH - _PAD_B}" x2="{_SW}" y2="{_SH - _PAD_B}" class="axis"/>',
        f'<text x="{_SPAD_L - 4}" y="{_PAD_T + 8}" class="tick" text-anchor="end">'
        f"{_tick(hi)}</text>",
        f'<text x="{_SPAD_L - 4}" y="{_SH - _PAD_B}" class="tick" text-anchor="end">'
        f"{_tick(lo)}</text>",
    ]
    if coords:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{line}" class="series"/>')
    for (t, v), (x, y) in zip(points, coords, strict=True):
        at = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" class="point" data-value="{_num(v)}">'
            f"<title>{esc(at)} UTC — {esc(name)} {_num(v)}</title></circle>"
        )
    return Markup(
        f'<figure class="chart series-chart" data-series="{esc(name)}">'
        f'<svg viewBox="0 0 {_SW} {_SH}" role="img" aria-label="{esc(name)} over time">'
        f"{''.join(parts)}</svg><figcaption><b>{esc(name)}</b> {esc(caption)}</figcaption>"
        "</figure>"
    )


def _num(value: float) -> str:
    return f"{value:.6g}"


def _tick(value: float) -> str:
    """An axis label short enough for the left margin (``79.99``, ``1.2e+06``)."""
    return f"{value:.4g}"
