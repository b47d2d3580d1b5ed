"""Prometheus metrics of one ingest app, in its own registry (several apps share a test process).

Counters are declared without ``_total``: prometheus_client exposes them as ``NAME_total``
(plus ``NAME_created``). The fleet gauges (``edgeorder_devices``, the oldest buffered order's
age) are read from the database at scrape time (``ingest.app.metrics``); with several workers on
one PostgreSQL ledger every worker exports the same values, so aggregate them with ``max()``,
never ``sum()``. The README's "Metrics" section lists every series.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from edgeorder import __version__
from edgeorder.ingest.domain.alerts import AlertKind
from edgeorder.ingest.store.queries import DEVICE_STATES

__all__ = ["Metrics"]

ALERT_KINDS = tuple(kind.value for kind in AlertKind)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters, gauges and histograms named ``edgeorder_ingest_*``."""

    def __init__(self, *, backend: str = "sqlite") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._fleet_gauges(backend)
        self.received = Counter(
            "edgeorder_ingest_events_received", "Event messages received", registry=r
        )
        self.accepted = Counter(
            "edgeorder_ingest_events_accepted",
            "Events durably recorded (new, not rejected)",
            registry=r,
        )
        self.rejected = Counter(
            "edgeorder_ingest_events_rejected", "Events rejected, by reason", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "edgeorder_ingest_events_duplicate",
            "Duplicate deliveries answered with the current status",
            registry=r,
        )
        self.throttled = Counter(
            "edgeorder_ingest_events_throttled", "Presses answered throttled", registry=r
        )
        self.orders_created = Counter(
            "edgeorder_ingest_orders_created", "Orders created on the platform", registry=r
        )
        self.orders_failed = Counter(
            "edgeorder_ingest_orders_failed", "Orders the platform refused", registry=r
        )
        self.platform_retries = Counter(
            "edgeorder_ingest_platform_retries", "Transient platform errors (retried)", registry=r
        )
        self.webhooks = Counter(
            "edgeorder_ingest_webhooks",
            "Webhook deliveries by platform and outcome (applied, unchanged, duplicate, "
            "unknown_order, ignored, unsigned, bad_timestamp, stale, bad_signature, malformed, "
            "retry_later, ...)",
            ["platform", "outcome"],
            registry=r,
        )
        self.broker_hooks = Counter(
            "edgeorder_ingest_broker_hooks",
            "Answers to the broker's HTTP authentication/authorization (EMQX), by hook and result",
            ["hook", "result"],
            registry=r,
        )
        self.buffer_depth = Gauge(
            "edgeorder_ingest_buffer_depth", "Pending order-outbox rows", registry=r
        )
        self.http_dropped = Counter(
            "edgeorder_ingest_http_connections_dropped",
            "HTTP connections closed by the server's limits, by reason "
            "(evicted, refused, header_timeout)",
            ["reason"],
            registry=r,
        )
        self.commits = Counter("edgeorder_ingest_commits", "Writer group commits", registry=r)
        self.committed_jobs = Counter(
            "edgeorder_ingest_committed_jobs", "Writes committed by the writer", registry=r
        )
        self.accepted_latency = Histogram(
            "edgeorder_ingest_publish_to_accepted_seconds",
            "From the event's device timestamp to its accepted status",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # --- every device channel: each message's final outcome (see ingest.mqtt.router) ---
        self.messages = Counter(
            "edgeorder_ingest_messages",
            "Messages handled to their final outcome, by channel and outcome "
            "(recorded, duplicate, rejected, ignored, dropped)",
            ["channel", "outcome"],
            registry=r,
        )
        self.messages_rejected = Counter(
            "edgeorder_ingest_messages_rejected",
            "Messages rejected, by channel and reason code",
            ["channel", "reason"],
            registry=r,
        )
        self.write_failures = Counter(
            "edgeorder_ingest_message_write_failures",
            "Failed attempts to handle a message, by channel and kind (transient: retried; "
            "deterministic: rejected as internal_error)",
            ["channel", "kind"],
            registry=r,
        )
        self.failing = Gauge(
            "edgeorder_ingest_messages_failing",
            "Messages whose handling failed for a transient reason and that wait for a retry "
            "(unacknowledged; Router.failing())",
            registry=r,
        )
        self.parked = Gauge(
            "edgeorder_ingest_messages_parked",
            "Failing messages past the fast retries, tried again every parked interval",
            registry=r,
        )
        self.retained_cleared = Counter(
            "edgeorder_ingest_retained_cleared",
            "Rejected retained messages that ingest cleared on the broker, by channel",
            ["channel"],
            registry=r,
        )
        self.ordered_latency = Histogram(
            "edgeorder_ingest_publish_to_ordered_seconds",
            "From the event's device timestamp to its ordered status",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        # --- alerts (ingest.alerting) ---
        self.alerts_active = Gauge(
            "edgeorder_alerts_active",
            "Alerts not cleared (active or acknowledged), by kind",
            ["kind"],
            registry=r,
        )
        self.alert_notifications = Counter(
            "edgeorder_alert_notifications",
            "Alert notification attempts by channel (webhook, email) and outcome (sent, "
            "summarised, deferred, failed: retried later, gave_up)",
            ["channel", "outcome"],
            registry=r,
        )
        for kind in ALERT_KINDS:  # every kind from the first scrape, 0 until one opens
            self.alerts_active.labels(kind)

    def _fleet_gauges(self, backend: str) -> None:
        """The chain's state as dashboards and alert rules read it (``edgeorder_*``)."""
        r = self.registry
        build = Gauge(
            "edgeorder_build_info",
            "Build of the running service; the value is always 1",
            ["service", "version", "python", "backend"],
            registry=r,
        )
        build.labels("ingest", __version__, platform.python_version(), backend).set(1)
        self.devices = Gauge(
            "edgeorder_devices",
            "Registered devices by state (online, offline, disabled; a disabled device is "
            "disabled whatever its presence); from the database: max() over workers",
            ["state"],
            registry=r,
        )
        for state in DEVICE_STATES:
            self.devices.labels(state)
        self.mqtt_up = Gauge(
            "edgeorder_mqtt_up",
            "1 while this worker is connected and subscribed to the broker, else 0",
            registry=r,
        )
        self.platform_up = Gauge(
            "edgeorder_order_platform_up",
            "1 while the order platform answers this worker (its last answers, or a TCP probe "
            "when no order was sent lately), else 0",
            registry=r,
        )
        self.oldest_buffered = Gauge(
            "edgeorder_buffered_order_oldest_age_seconds",
            "Age of the oldest order waiting for the platform (0 when none waits); from the "
            "database: max() over workers",
            registry=r,
        )
        self.scrape_read_failures = Counter(
            "edgeorder_ingest_metrics_read_failures",
            "Scrapes whose database read failed or timed out (the fleet gauges kept their "
            "previous values)",
            registry=r,
        )

    def on_commit(self, jobs: int) -> None:
        """Writer hook (writer thread; prometheus_client is thread-safe)."""
        self.commits.inc()
        self.committed_jobs.inc(jobs)

    def render(self) -> bytes:
        return generate_latest(self.registry)
