"""The one configuration model of the ``ingest`` process, validated at start-up.

Every field can come from the command line or from an ``EDGEORDER_INGEST_*`` environment
variable; ``edgeorder ingest --help`` lists them.
"""

from __future__ import annotations

import os
import secrets
import socket
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.ingest.store.database import Database

__all__ = ["Settings"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Path("./edgeorder-data/ingest")
    db_url: SecretStr | None = None
    """``postgresql://USER@HOST:PORT/DB``: everything ingest stores lives in this PostgreSQL,
    which several workers share; default: SQLite, ``ingest.db`` in ``data_dir``."""
    worker_id: str | None = Field(default=None, min_length=1, max_length=200)
    """This process among the workers of one ledger (logs, order-outbox leases); default:
    HOST-PID-random, new at every start."""
    # --- MQTT ------------------------------------------------------------------------------
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str = "ingest"
    mqtt_password: SecretStr = SecretStr("")
    mqtt_client_id: str = Field(default="edgeorder-ingest", min_length=1, max_length=256)
    mqtt_ca_file: Path | None = None
    """The CA that signed the broker's certificate (``mqtts://``); must be a readable file."""
    mqtt_shared_group: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    """Subscribe through ``$share/GROUP/...`` so several ingest workers split the stream; one
    topic level of letters, digits, ``_``, ``.`` and ``-`` (a ``/``, ``+`` or ``#`` would make
    another filter, which the broker refuses or reads differently)."""
    # --- what devices are told (provisioning) -------------------------------------------------
    device_mqtt_url: str | None = None
    """The broker URL written into every new device's firmware config, as devices reach it
    (``mqtts://BROKER:8883``), shown on the Provisioning page; default ``mqtt_url``, which is
    ingest's own and fine only when devices run on the same machine."""
    device_ca_file: Path | None = None
    """The CA certificate devices verify the broker with (``edgeorder tls`` makes it): offered
    with every new device's config, which names it ``ca.crt`` beside the TOML."""
    broker_reads_registry: bool = False
    """True when the broker checks the registry itself (the demo's embedded broker); otherwise
    the dashboard says when Mosquitto's files are older than a registry change."""
    # --- HTTP (REST API, dashboard, webhooks, metrics) -------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    """URL the order platform can reach for webhooks; default http://HTTP_HOST:HTTP_PORT."""
    # --- order platform ---------------------------------------------------------------------
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    webhook_secret: SecretStr = SecretStr("")
    poll_interval_s: float = Field(default=30.0, gt=0)
    retry_base_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    outbox_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    """Order-outbox rows handed to the platform at once (in flight); default 256 for the
    built-in order core (batched requests), 64 for the other platforms (a request each)."""
    outbox_lease_s: float = Field(default=60.0, ge=1, le=3600)
    """How long a worker holds the order-outbox rows it hands to the platform; a killed
    worker's rows are taken over by another after this (keep it well above the platform's
    timeout: a live worker's call must never outlast its lease)."""
    outbox_batch_max: int = Field(default=32, ge=1, le=100)
    """Most orders per request where the platform takes several (the built-in order core's
    ``POST /api/checkouts``); 1 sends one request per order."""
    # --- rules -------------------------------------------------------------------------------
    stale_event_s: int = Field(default=24 * 3600, gt=0, le=366 * 24 * 3600)
    """An event whose device timestamp is older than this is rejected as stale."""
    future_event_s: int = Field(default=3600, gt=0, le=366 * 24 * 3600)
    """An event whose device timestamp is further ahead than this is rejected (``future``)."""
    default_profile: dict[str, Any] = Field(default_factory=dict)
    """Buyer data (Customer/Shipping/PaymentMethod) for devices without their own profile."""
    telemetry_history_s: int = Field(default=7 * 24 * 3600, ge=0, le=366 * 24 * 3600)
    """How long each heartbeat is kept for the device page's telemetry chart (0: none kept;
    only the latest heartbeat then)."""
    # --- writer ------------------------------------------------------------------------------
    commit_batch_max: int = Field(default=512, ge=1)
    # --- operators -----------------------------------------------------------------------------
    admin_password: SecretStr | None = None
    """Creates/updates operator ``admin`` at start-up (env EDGEORDER_ADMIN_PASSWORD)."""
    session_ttl_s: int = Field(default=12 * 3600, gt=0)
    cookie_secure: bool = False
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=300, ge=1)
    login_hash_workers: int = Field(default=1, ge=1, le=32)
    """Password hashes verified at once (argon2id: ~64 MiB and 4 lanes each); more logins wait
    their turn, so a burst of logins cannot take the CPU the event path needs."""
    # --- health ------------------------------------------------------------------------------
    health_buffer_age_s: float = Field(default=300.0, gt=0)
    """``/healthz`` is degraded while an order has waited longer than this for the platform."""
    health_probe_interval_s: float = Field(default=15.0, gt=0)
    """With no order sent lately, ``/healthz`` connects to the platform's host at most this
    often to tell whether it is reachable."""
    # --- HTTP server limits --------------------------------------------------------------------
    http_max_connections: int = Field(default=1000, ge=8, le=100_000)
    """Open HTTP connections at most (and never more than half the open-file limit): past it
    the longest-idle connection is closed to make room, or a new one is refused with 503."""
    http_keepalive_s: float = Field(default=15.0, gt=0, le=3600)
    """An idle keep-alive connection is closed after this many seconds."""
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """A new connection that has not sent a whole request head by then is closed."""
    # --- Home Assistant ------------------------------------------------------------------------
    ha_discovery: bool = False
    """Publish Home Assistant MQTT discovery configs (device triggers, last-order sensor,
    availability) for every enabled device (``ingest.mqtt.homeassistant``)."""
    ha_discovery_prefix: str = "homeassistant"
    """Home Assistant's discovery prefix (its MQTT integration's setting); its birth message
    is ``<prefix>/status``."""
    # --- the platform's catalog (SKU picker, unknown-SKU refusal) ----------------------------
    catalog_ttl_s: float = Field(default=60.0, ge=1, le=3600)
    """A read of the order platform's SKUs is used this long by the dashboard's SKU picker
    and the check of every mapping change (``ingest.orders.catalog``)."""
    # --- order-platform webhooks -----------------------------------------------------------------
    webhook_tolerance_s: int = Field(default=300, ge=1, le=86_400)
    """A signed webhook whose timestamp is further than this from now is refused."""

    # --- alerts (ingest.alerting; README "Alerts") -------------------------------------------
    alert_interval_s: float = Field(default=15.0, gt=0, le=3600)
    """How often the alert rules are evaluated (and due notifications sent)."""
    alert_offline_s: float = Field(default=300.0, gt=0, le=30 * 86_400)
    """A device offline for longer than this raises ``device_offline``."""
    alert_buffer_age_s: float = Field(default=300.0, gt=0, le=30 * 86_400)
    """An order buffered for longer than this raises ``buffer_age``."""
    alert_failure_window_s: float = Field(default=600.0, gt=0, le=7 * 86_400)
    """The window over which a device's failed/rejected events are counted."""
    alert_failure_count: int = Field(default=3, ge=1, le=1_000_000)
    """``orders_failing``: at least this many failed/rejected events in the window ..."""
    alert_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    """... making at least this share of the device's events in the window."""
    alert_queue_depth: int = Field(default=100, ge=1, le=10_000_000)
    """A device reporting this many events waiting in its outbox raises ``queue_depth``."""
    alert_dropped: int = Field(default=1, ge=1, le=10_000_000)
    """A device reporting this many dropped presses (its outbox was full) raises
    ``presses_dropped``."""
    alert_config_grace_s: float = Field(default=600.0, gt=0, le=30 * 86_400)
    """A device that reported no config version this long after it was added raises
    ``config_not_reported``."""
    alert_clear_hold_s: float = Field(default=30.0, ge=0, le=86_400)
    """A condition must stay gone this long before its alert clears (the flapping guard)."""
    alert_webhook_url: str | None = None
    """POST every alert transition here, signed (``X-Edgeorder-Signature``)."""
    alert_webhook_secret: SecretStr = SecretStr("")
    """The HMAC secret of the alert webhook (required with ``alert_webhook_url``)."""
    alert_smtp_host: str | None = None
    """Mail every alert transition through this SMTP server."""
    alert_smtp_port: int = Field(default=25, ge=1, le=65535)
    alert_smtp_from: str = ""
    alert_smtp_to: str = ""
    """Recipients, comma-separated."""
    alert_smtp_starttls: bool = False
    alert_smtp_user: str = ""
    alert_smtp_password: SecretStr = SecretStr("")
    alert_notify_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """How long one webhook call or SMTP session may take."""
    alert_notify_attempts: int = Field(default=5, ge=1, le=100)
    """Attempts per message before it is given up (logged, counted)."""
    alert_notify_retry_s: float = Field(default=5.0, gt=0, le=3600)
    """First retry delay of a failed message; doubles per attempt, at most 10 minutes."""
    alert_notify_max: int = Field(default=20, ge=1, le=100_000)
    """Messages per channel per ``alert_notify_period_s`` at most; past it, the rest go out
    as one summary message."""
    alert_notify_period_s: float = Field(default=3600.0, gt=0, le=7 * 86_400)

    @field_validator("alert_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @model_validator(mode="after")
    def _alert_channels(self) -> Settings:
        if self.alert_webhook_url and not self.alert_webhook_secret.get_secret_value():
            raise ValueError("alert_webhook_url needs alert_webhook_secret (the HMAC key)")
        if self.alert_smtp_host and not (self.alert_smtp_from and self.alert_smtp_recipients):
            raise ValueError("alert_smtp_host needs alert_smtp_from and alert_smtp_to")
        return self

    @property
    def alert_smtp_recipients(self) -> list[str]:
        return [a.strip() for a in self.alert_smtp_to.split(",") if a.strip()]

    @field_validator("mqtt_url", "device_mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            _check_url(value, ("mqtt", "mqtts"))
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value:
            _check_url(value, ("http", "https"))
        return value or None

    @field_validator("mqtt_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                with value.open("rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value

    @field_validator("ha_discovery_prefix")
    @classmethod
    def _ha_prefix(cls, value: str) -> str:
        from edgeorder.ingest.domain.homeassistant import is_valid_prefix

        if not is_valid_prefix(value):
            raise ValueError(
                "must be topic levels of letters, digits, '_' and '-' separated by '/' "
                "(no wildcard, no empty level), at most 100 characters"
            )
        return value

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            Database.from_url(value.get_secret_value())  # raises DatabaseUrlError (ValueError)
            return value
        return None

    @property
    def devices_mqtt_url(self) -> str:
        """The broker URL devices are given (``device_mqtt_url``, else ingest's own)."""
        return self.device_mqtt_url or self.mqtt_url

    @property
    def db_path(self) -> Path:
        """The SQLite file (the embedded default; unused with ``db_url``)."""
        return self.data_dir / "ingest.db"

    @property
    def database(self) -> Database:
        """Where everything ingest stores lives: ``db_url``'s PostgreSQL, else ``db_path``."""
        url = self.db_url.get_secret_value() if self.db_url is not None else None
        return Database.for_service(self.data_dir, url)

    @cached_property
    def worker(self) -> str:
        """``worker_id``, or one made for this process."""
        return self.worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _check_url(value: str, schemes: tuple[str, ...]) -> None:
    """``SCHEME://HOST[:PORT]...`` with one of ``schemes``, a host and a port in range: what
    the MQTT link and the webhook registration would otherwise fail on, later and repeatedly."""
    allowed = " or ".join(f"{scheme}://" for scheme in schemes)
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ValueError(f"must start with {allowed}")
    parts = urlsplit(value)
    if not parts.hostname:
        raise ValueError(f"needs a host: {allowed}HOST[:PORT]")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
