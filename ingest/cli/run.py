"""``edgeorder ingest``: run the backend (MQTT events -> orders, status back, dashboard, API).

Every option also reads ``EDGEORDER_INGEST_<NAME>`` (e.g. ``EDGEORDER_INGEST_MQTT_URL``); the
command line wins. SIGTERM/SIGINT shut down gracefully: nothing received is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from edgeorder.httpserver import GuardedSite, make_runner
from edgeorder.ingest.app import SERVICE_KEY, create_app, server_limits
from edgeorder.ingest.errors import StartError
from edgeorder.ingest.settings import Settings

__all__ = ["build_settings", "main"]

log = structlog.get_logger(__name__)
ENV_PREFIX = "EDGEORDER_INGEST_"

# option dest -> (Settings field path, help)
_OPTIONS: dict[str, tuple[str, str]] = {
    "data_dir": ("data_dir", "directory of ingest.db (default ./edgeorder-data/ingest)"),
    "db_url": (
        "db_url",
        "postgresql://USER@HOST:PORT/DB: keep everything in this PostgreSQL, shared by several "
        "workers (default: SQLite, ingest.db in --data-dir)",
    ),
    "worker_id": ("worker_id", "this worker's name among those of one ledger (default: random)"),
    "mqtt_url": ("mqtt_url", "broker URL, mqtt://HOST:PORT or mqtts://HOST:PORT"),
    "mqtt_username": ("mqtt_username", "ingest's MQTT username (default ingest)"),
    "mqtt_password": ("mqtt_password", "ingest's MQTT password (prefer --mqtt-password-file)"),
    "mqtt_client_id": ("mqtt_client_id", "stable MQTT client id of the persistent session"),
    "mqtt_ca_file": ("mqtt_ca_file", "CA bundle for mqtts://"),
    "shared_group": ("mqtt_shared_group", "subscribe via $share/GROUP/... (several workers)"),
    "device_mqtt_url": (
        "device_mqtt_url",
        "broker URL as devices reach it, written into their configs (mqtts://HOST:8883)",
    ),
    "device_ca_file": ("device_ca_file", "CA certificate devices verify the broker with"),
    "http_host": ("http_host", "HTTP listen address (default 127.0.0.1)"),
    "http_port": ("http_port", "HTTP port: dashboard, /api, /metrics, webhooks (default 8080)"),
    "public_url": ("public_url", "URL the order platform can reach for webhooks"),
    "connector": ("connector.kind", "order platform: ordercore, nuvemshop, evendi, oneentry"),
    "ordercore_url": ("connector.base_url", "platform base URL (default http://127.0.0.1:8081)"),
    "ordercore_token": ("connector.token", "platform bearer token"),
    "platform_timeout_s": ("connector.timeout_s", "seconds per platform call (default 5)"),
    "webhook_secret": ("webhook_secret", "HMAC secret of the webhook (default: random)"),
    "poll_interval_s": ("poll_interval_s", "polling fallback period in seconds (default 30)"),
    "retry_base_s": ("retry_base_s", "first retry delay while the platform is down"),
    "retry_max_s": ("retry_max_s", "longest retry delay (cap of the backoff)"),
    "outbox_concurrency": (
        "outbox_concurrency",
        "orders in flight to the platform (default 256 for ordercore, 64 for the other platforms)",
    ),
    "outbox_lease_s": (
        "outbox_lease_s",
        "seconds a worker holds the orders it sends; a killed worker's are taken over after "
        "this (default 60)",
    ),
    "outbox_batch_max": (
        "outbox_batch_max",
        "most orders per platform request where it takes several (default 32)",
    ),
    "stale_event_s": ("stale_event_s", "reject events older than this many seconds"),
    "future_event_s": (
        "future_event_s",
        "reject events dated further ahead than this many seconds (default 3600)",
    ),
    "telemetry_history_s": (
        "telemetry_history_s",
        "keep each device heartbeat this many seconds for the telemetry chart; 0 keeps none "
        "(default 604800, 7 days)",
    ),
    "commit_batch_max": ("commit_batch_max", "most writes per group commit (default 512)"),
    "admin_password": ("admin_password", "create/update dashboard operator admin"),
    "login_hash_workers": (
        "login_hash_workers",
        "password checks (argon2id, ~64 MiB each) run at once; more logins wait (default 1)",
    ),
    "health_buffer_age_s": (
        "health_buffer_age_s",
        "/healthz is degraded while an order waits longer than this (default 300)",
    ),
    "health_probe_interval_s": (
        "health_probe_interval_s",
        "with no order sent lately, /healthz connects to the platform at most this often "
        "(default 15)",
    ),
    "http_max_connections": (
        "http_max_connections",
        "open HTTP connections at most, capped at half the open-file limit (default 1000)",
    ),
    "http_keepalive_s": ("http_keepalive_s", "close idle HTTP connections after (default 15)"),
    "http_header_timeout_s": (
        "http_header_timeout_s",
        "close a connection without a whole request head after (default 10)",
    ),
    "webhook_tolerance_s": (
        "webhook_tolerance_s",
        "refuse a platform webhook signed further than this from now (default 300)",
    ),
    "ha_discovery_prefix": (
        "ha_discovery_prefix",
        "Home Assistant's MQTT discovery prefix (default homeassistant; with --ha-discovery)",
    ),
    "alert_interval_s": ("alert_interval_s", "seconds between alert evaluations (default 15)"),
    "alert_offline_s": (
        "alert_offline_s",
        "alert when a device has been offline longer than this many seconds (default 300)",
    ),
    "alert_buffer_age_s": (
        "alert_buffer_age_s",
        "alert when an order has been buffered longer than this many seconds (default 300)",
    ),
    "alert_failure_window_s": (
        "alert_failure_window_s",
        "window in seconds over which a device's failed/rejected events count (default 600)",
    ),
    "alert_failure_count": (
        "alert_failure_count",
        "alert when a device has at least this many failed/rejected events in the window "
        "(default 3) ...",
    ),
    "alert_failure_ratio": (
        "alert_failure_ratio",
        "... making at least this share (0-1) of its events in the window (default 0.5)",
    ),
    "alert_queue_depth": (
        "alert_queue_depth",
        "alert when a device reports this many events waiting in its outbox (default 100)",
    ),
    "alert_dropped": (
        "alert_dropped",
        "alert when a device reports this many dropped presses (default 1)",
    ),
    "alert_config_grace_s": (
        "alert_config_grace_s",
        "alert when a device reported no config version this many seconds after it was "
        "added (default 600)",
    ),
    "alert_clear_hold_s": (
        "alert_clear_hold_s",
        "an alert clears once its condition has been gone this many seconds (default 30)",
    ),
    "alert_webhook_url": ("alert_webhook_url", "POST signed alert notifications to this URL"),
    "alert_webhook_secret": (
        "alert_webhook_secret",
        "HMAC secret signing the alert webhook (X-Edgeorder-Signature)",
    ),
    "alert_smtp_host": ("alert_smtp_host", "mail alert notifications through this SMTP server"),
    "alert_smtp_port": ("alert_smtp_port", "SMTP port (default 25)"),
    "alert_smtp_from": ("alert_smtp_from", "sender address of alert mails"),
    "alert_smtp_to": ("alert_smtp_to", "recipients of alert mails, comma-separated"),
    "alert_smtp_starttls": (
        "alert_smtp_starttls",
        "true: STARTTLS before logging in and sending (default false)",
    ),
    "alert_smtp_user": ("alert_smtp_user", "SMTP user (AUTH after STARTTLS; default: none)"),
    "alert_smtp_password": ("alert_smtp_password", "SMTP password"),
    "alert_notify_timeout_s": (
        "alert_notify_timeout_s",
        "seconds one webhook call or SMTP session may take (default 10)",
    ),
    "alert_notify_attempts": (
        "alert_notify_attempts",
        "attempts per alert message before it is given up (default 5)",
    ),
    "alert_notify_retry_s": (
        "alert_notify_retry_s",
        "first retry delay of a failed alert message, doubled per attempt (default 5)",
    ),
    "alert_notify_max": (
        "alert_notify_max",
        "alert messages per channel per period at most; the rest go as one summary (default 20)",
    ),
    "alert_notify_period_s": (
        "alert_notify_period_s",
        "the period of --alert-notify-max, in seconds (default 3600)",
    ),
}
_JSON_OPTIONS = {
    "default_profile": ("default_profile", "buyer JSON (Customer/Shipping/...)"),
    "connector_options": ("connector.options", "platform options as JSON"),
}


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the ingest service: subscribe to device events, record them exactly "
        "once, create orders through the connector, send statuses back, serve the dashboard, "
        f"REST API, /metrics and /healthz. Every option also reads {ENV_PREFIX}<OPTION>.",
    )
    for dest, (_, help_text) in {**_OPTIONS, **_JSON_OPTIONS}.items():
        parser.add_argument("--" + dest.replace("_", "-"), dest=dest, default=None, help=help_text)
    parser.add_argument(
        "--ha-discovery",
        action="store_true",
        default=None,
        help="publish Home Assistant MQTT discovery for every enabled device: triggers for "
        "single/double/long press, a last-order sensor, availability from presence "
        f"(env {ENV_PREFIX}HA_DISCOVERY=1; ingest's broker account must be allowed to write "
        "<prefix>/#, as broker-auth grants)",
    )
    parser.add_argument(
        "--mqtt-password-file",
        default=None,
        type=Path,
        help=f"file holding ingest's MQTT password (env {ENV_PREFIX}MQTT_PASSWORD_FILE)",
    )
    return parser


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        _set(values.setdefault(head, {}), rest, value)
    else:
        values[head] = value


def build_settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from environment, then command line; raises ValidationError / ValueError."""
    values: dict[str, Any] = {}
    for dest, (path, _) in {**_OPTIONS, **_JSON_OPTIONS}.items():
        raw = getattr(args, dest)
        if raw is None:
            raw = env.get(ENV_PREFIX + dest.upper())
        if raw is None:
            continue
        if dest in _JSON_OPTIONS:
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--{dest.replace('_', '-')}: not JSON: {exc}") from exc
        _set(values, path, raw)
    ha = args.ha_discovery or env.get(ENV_PREFIX + "HA_DISCOVERY")
    if ha:
        values["ha_discovery"] = ha
    password_file = args.mqtt_password_file or env.get(ENV_PREFIX + "MQTT_PASSWORD_FILE")
    if password_file:
        values["mqtt_password"] = Path(password_file).read_text().strip()
    if "admin_password" not in values and env.get("EDGEORDER_ADMIN_PASSWORD"):
        values["admin_password"] = env["EDGEORDER_ADMIN_PASSWORD"]
    return Settings.model_validate(values)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """The settings ``edgeorder ingest`` would run with given no option: the environment's
    (``device add`` checks SKUs against the same platform)."""
    return build_settings(_parser("ingest").parse_args([]), env)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    app = create_app(settings)
    limits = server_limits(settings)
    runner = make_runner(app, limits, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Starts the service (cleanup_ctx), then the dashboard: inside the try, so a later
        # start-up step that fails still stops the service started before it.
        await runner.setup()
        dropped = app[SERVICE_KEY].metrics.http_dropped
        site = GuardedSite(
            runner,
            settings.http_host,
            settings.http_port,
            limits=limits,
            on_drop=lambda reason: dropped.labels(reason).inc(),
        )
        await site.start()
        # Everything made during start-up (modules, schemas, the app) lives as long as the
        # process: out of the collector's way, a full collection no longer walks it (pauses
        # of ~70 ms under load before, the bench's latency tail).
        gc.freeze()
        log.info(
            "ingest.ready",
            http=f"http://{settings.http_host}:{settings.http_port}",
            mqtt=settings.mqtt_url,
        )
        await stop.wait()
        log.info("ingest.signal")
    finally:
        await runner.cleanup()
    return 0


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    try:
        settings = build_settings(args, os.environ)
    except ValidationError as exc:
        print(f"{prog}: invalid settings:", file=sys.stderr)
        for err in exc.errors(include_url=False):
            print(f"  {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(settings))
    except (OSError, ValueError, StartError) as exc:  # the HTTP port is taken, bad connector
        print(f"{prog}: {exc}", file=sys.stderr)  # options, a start-up step failed
        return 1
