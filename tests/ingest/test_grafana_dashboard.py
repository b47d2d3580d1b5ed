"""``deploy/grafana/edgeorder.json`` queries only series the services export.

Every PromQL ``expr`` of the dashboard goes through a small tokenizer that keeps the metric
names (identifiers that are not functions, keywords, label names or grouping labels); each name
must be exported by a running ingest or order core, scraped over HTTP (a histogram exports
``_bucket``, ``_sum`` and ``_count``, a counter ``_total``, as Prometheus' parser reads them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.support import Ingest, OrderCore

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "edgeorder.json"

KEYWORDS = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
        "unless", "offset", "atan2", "inf", "nan",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?:\s*\()?|\d[0-9A-Za-z_.]*")
"""An identifier (with its ``(`` if it is called), or a number or duration (``5m``, ``1e3``)."""


def series_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    text = _STRING.sub(" ", expr)  # label values, regexes
    text = _VARIABLE.sub(" ", text)  # $__rate_interval, ${DS_PROMETHEUS}
    text = _MATCHERS.sub(" ", text)  # {state="online"}: label names are not series
    text = _RANGE.sub(" ", text)  # [5m]
    text = _GROUPING.sub(" ", text)  # by (le, route): grouping labels
    names = set()
    for token in _TOKEN.findall(text):
        if token.endswith("(") or token[0].isdigit():  # a function call, a number
            continue
        if token.lower() in KEYWORDS:
            continue
        names.add(token)
    return names


def exprs(node: Any) -> Iterator[str]:
    """Every ``expr`` string anywhere in the dashboard (rows may nest panels)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs(item)


def exported(text: str) -> set[str]:
    """The series names a scrape exports, by family type (labelled families without samples
    yet included: their ``# TYPE`` line is the promise)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def test_tokenizer_keeps_metric_names_only() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) "
        '(rate(edgeorder_x_seconds_bucket{route=~"/a.*", code!="5xx"}[$__rate_interval]))) '
        "/ ignoring(route) group_left max(up offset 5m) > bool 1"
    )
    assert series_names(expr) == {"edgeorder_x_seconds_bucket", "up"}
    assert series_names('max by (state) (edgeorder_devices{state="online"})') == {
        "edgeorder_devices"
    }
    assert series_names("sum(a_total) and on (kind) b or c unless d") == {"a_total", "b", "c", "d"}
    assert series_names("rate ( x[1m] )") == {"x"}


def test_dashboard_is_grafana_model_with_prometheus_variable() -> None:
    data = dashboard()
    assert data["uid"]
    assert data["title"]
    assert data["schemaVersion"] >= 36
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))


async def test_every_queried_series_is_exported(ingest: Ingest, ordercore: OrderCore) -> None:
    # a request first, so the order core's labelled families have children to show
    async with aiohttp.ClientSession() as http, http.get(ordercore.url + "/livez") as resp:
        assert resp.status == 200
    available = exported(await scrape(ingest.url)) | exported(await scrape(ordercore.url))
    queried = {name for expr in exprs(dashboard()) for name in series_names(expr)}
    assert len(queried) >= 15
    missing = queried - available
    assert not missing, f"the dashboard queries series no service exports: {sorted(missing)}"
