"""What the Provisioning page says about the broker: the URL and CA devices are given (ingest's
``device_mqtt_url`` / ``device_ca_file`` settings, the same ones ``edgeorder device add``
reads), and whether Mosquitto's files are behind the registry.

Mosquitto learns of an added, disabled, enabled, removed or re-keyed device only from
``edgeorder broker-auth ... --reload``, which ingest (user ``edgeorder``) cannot run: it may not
write ``/etc/mosquitto`` nor signal the broker. So the page counts the registry changes made
since broker-auth last wrote the files (both are audit rows) and says what to run. The demo's
embedded broker reads the registry itself (``broker_reads_registry``): nothing to say there.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from edgeorder.ingest.domain.firmware import DEVICE_CA_NAME
from edgeorder.ingest.keys import SETTINGS_KEY
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store.audit import pending_broker_changes
from edgeorder.ingest.web.markup import Markup, esc
from edgeorder.ingest.web.state import STORE_KEY

__all__ = [
    "BrokerView",
    "ProvisioningUnavailable",
    "broker_card",
    "broker_notice",
    "broker_view",
    "ca_download",
    "load_broker_view",
]


class ProvisioningUnavailable(RuntimeError):
    """A device cannot be given a working config right now (the CA setting is broken)."""


@dataclass(frozen=True)
class BrokerView:
    device_url: str
    ca_pem: str | None
    ca_problem: str | None
    pending: int | None
    """None when the broker reads the registry itself."""
    data_dir: Path


def broker_view(settings: Settings, pending: int) -> BrokerView:
    """Blocking (reads the CA file): call it from a worker thread."""
    ca_pem, problem = None, None
    if settings.device_ca_file is not None:
        try:
            ca_pem = settings.device_ca_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"cannot read {settings.device_ca_file}: {exc}"
    return BrokerView(
        device_url=settings.devices_mqtt_url,
        ca_pem=ca_pem,
        ca_problem=problem,
        pending=None if settings.broker_reads_registry else pending,
        data_dir=settings.data_dir,
    )


async def load_broker_view(request: web.Request) -> BrokerView:
    """The broker's view for this request: one audit query, one small file read, off the loop."""
    pending = await request.app[STORE_KEY].read(pending_broker_changes)
    return await asyncio.to_thread(broker_view, request.app[SETTINGS_KEY], pending)


def ca_download(view: BrokerView) -> Markup:
    if view.ca_pem is None:
        return Markup("")
    href = "data:application/x-pem-file;base64," + base64.b64encode(view.ca_pem.encode()).decode()
    return Markup(
        f'<a class="button" id="ca-download" download="{DEVICE_CA_NAME}" href="{esc(href)}">'
        f"Download the broker's CA ({DEVICE_CA_NAME})</a>"
    )


def broker_notice(view: BrokerView) -> Markup:
    """Whether Mosquitto must be told about registry changes, and how."""
    if not view.pending:
        return Markup("")
    command = (
        f"edgeorder broker-auth --data-dir {view.data_dir} --out /etc/mosquitto/edgeorder --reload"
    )
    changes = "change" if view.pending == 1 else "changes"
    return Markup(
        f'<p class="flash warning" id="broker-pending" role="status">The broker does not know '
        f"about {view.pending} registry {changes} yet (new, disabled, enabled, removed or "
        f"re-keyed devices): on the broker host, as root, run <code>{esc(command)}</code>.</p>"
    )


def broker_card(view: BrokerView) -> Markup:
    """The settings every new device's config gets, and the broker's state."""
    url_note = ""
    if view.device_url.split("://", 1)[-1].startswith(("127.", "localhost", "[::1]")):
        url_note = (
            '<p class="muted">Only a device on this machine reaches a loopback address: set '
            "<code>EDGEORDER_INGEST_DEVICE_MQTT_URL</code> (<code>--device-mqtt-url</code>) to "
            "the broker's address as devices see it.</p>"
        )
    if view.ca_problem:
        ca = Markup(f'<span class="error-text">{esc(view.ca_problem)}</span>')
    elif view.ca_pem is not None:
        ca = Markup(f"<code>{DEVICE_CA_NAME}</code>, beside the config on the device ")
        ca = Markup(ca + ca_download(view))
    else:
        ca = Markup(
            "none set (a <code>mqtts://</code> URL then needs a publicly trusted "
            "certificate; set <code>EDGEORDER_INGEST_DEVICE_CA_FILE</code>)"
        )
    return Markup(
        f"{broker_notice(view)}"
        '<section class="card" id="broker"><h2>Broker, as devices reach it</h2><dl>'
        f'<dt>URL</dt><dd><code id="device-mqtt-url">{esc(view.device_url)}</code></dd>'
        f"<dt>CA certificate</dt><dd>{ca}</dd></dl>{url_note}</section>"
    )
