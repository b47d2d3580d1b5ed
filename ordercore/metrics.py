"""``GET /metrics`` of the order core: Prometheus text exposition (version 0.0.4).

The hot path only adds to plain dicts in memory (one event loop, no lock): a request's route
template, method and status code, its duration in a histogram bucket, the orders a checkout
created, an idempotent replay. The text is made at scrape time, where the orders by state are
also counted in the database (one ``GROUP BY`` on the reader). Series, all prefixed
``edgeorder_``:

- ``ordercore_http_requests_total{route,method,code}`` (counter)
- ``ordercore_http_request_duration_seconds{route,method}`` (histogram)
- ``ordercore_orders_created_total`` (counter), ``ordercore_idempotent_replays_total`` (counter)
- ``ordercore_orders{state}`` (gauge, from the database)
- ``build_info{service="ordercore",version,python,backend="sqlite"}`` (gauge, always 1)
"""

from __future__ import annotations

import bisect
import platform
from collections.abc import Iterable, Mapping

from aiohttp import web

from edgeorder import __version__

__all__ = [
    "BUCKETS",
    "CONTENT_TYPE",
    "UNMATCHED",
    "Metrics",
    "escape_label",
    "render_build_info",
    "route_label",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the request duration histogram; ``+Inf`` is implied."""
UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404 or 405): a bounded label."""


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs.items())
    return "{" + inner + "}" if inner else ""


def _float(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


def render_build_info(service: str, backend: str) -> str:
    """``edgeorder_build_info`` of a service, as ingest and the order core both export it."""
    labels = _labels(
        {
            "service": service,
            "version": __version__,
            "python": platform.python_version(),
            "backend": backend,
        }
    )
    return (
        "# HELP edgeorder_build_info Build of the running service; the value is always 1\n"
        "# TYPE edgeorder_build_info gauge\n"
        f"edgeorder_build_info{labels} 1\n"
    )


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket (not cumulative); last: +Inf
        self.sum = 0.0


class Metrics:
    """The order core's counters (see the module docstring); ``render`` makes the text."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[tuple[str, str], _Histogram] = {}
        self.orders_created = 0
        self.replays = 0

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        """One answered request (the hot path: two dict updates)."""
        key = (route, method, code)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.durations.get((route, method))
        if histogram is None:
            histogram = self.durations[(route, method)] = _Histogram()
        histogram.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        histogram.sum += seconds

    def checkout(self, *, replayed: bool, status: int, orders: int) -> None:
        """A checkout's answer: new orders, or a replay of an earlier answer."""
        if replayed:
            self.replays += 1
        elif status == 201:
            self.orders_created += orders

    def render(self, orders_by_state: Iterable[tuple[str, int]]) -> str:
        parts = [self._requests(), self._durations()]
        parts.append(
            _counter(
                "edgeorder_ordercore_orders_created_total",
                "Orders created by checkouts (a replay creates none)",
                self.orders_created,
            )
        )
        parts.append(
            _counter(
                "edgeorder_ordercore_idempotent_replays_total",
                "Checkouts answered by replaying the stored answer of their Idempotency-Key",
                self.replays,
            )
        )
        lines = [
            "# HELP edgeorder_ordercore_orders Orders in the database, by state",
            "# TYPE edgeorder_ordercore_orders gauge",
        ]
        lines += [
            f"edgeorder_ordercore_orders{_labels({'state': s})} {n}" for s, n in orders_by_state
        ]
        parts.append("\n".join(lines) + "\n")
        parts.append(render_build_info("ordercore", "sqlite"))
        return "".join(parts)

    def _requests(self) -> str:
        name = "edgeorder_ordercore_http_requests_total"
        lines = [
            f"# HELP {name} HTTP requests answered, by route template, method and status code",
            f"# TYPE {name} counter",
        ]
        for (route, method, code), n in sorted(self.requests.items()):
            labels = _labels({"route": route, "method": method, "code": str(code)})
            lines.append(f"{name}{labels} {n}")
        return "\n".join(lines) + "\n"

    def _durations(self) -> str:
        name = "edgeorder_ordercore_http_request_duration_seconds"
        lines = [
            f"# HELP {name} Time to answer a request, by route template and method",
            f"# TYPE {name} histogram",
        ]
        for (route, method), h in sorted(self.durations.items()):
            base = {"route": route, "method": method}
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), h.counts, strict=True):
                running += count
                labels = _labels({**base, "le": _float(bound)})
                lines.append(f"{name}_bucket{labels} {running}")
            lines.append(f"{name}_sum{_labels(base)} {_float(h.sum)}")
            lines.append(f"{name}_count{_labels(base)} {running}")
        return "\n".join(lines) + "\n"


def _counter(name: str, help_text: str, value: int) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} counter\n{name} {value}\n"


def route_label(request: web.Request) -> str:
    """The route template a request matched (``/api/order/{id}``), or ``unmatched``."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical
