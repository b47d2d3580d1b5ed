"""What an alert notification says, on the webhook (JSON) and by e-mail (text). Pure.

Webhook body, one transition::

    {"v": 1, "type": "alert", "transition": "opened", "alert": {"id": 7, "kind":
     "device_offline", "device_id": "kitchen-01", "state": "active", "since": "...",
     "detail": "offline since ...", ...}, "sent_at": "..."}

and, past the cap per period, one summary of the rest::

    {"v": 1, "type": "summary", "count": 12, "items": [{"transition": "opened",
     "alert": {...}}, ...], "sent_at": "..."}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

__all__ = ["alert_json", "email_message", "subject_of", "summary_email", "summary_json"]

_FIELDS = (
    "id",
    "kind",
    "device_id",
    "state",
    "since",
    "detail",
    "opened_at",
    "acknowledged_by",
    "acknowledged_at",
    "cleared_at",
)


def public(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert's documented fields (as ``GET /api/alerts`` answers them)."""
    return {name: alert.get(name) for name in _FIELDS}


def alert_json(transition: str, alert: dict[str, Any], sent_at: str) -> bytes:
    body = {"v": 1, "type": "alert", "transition": transition, "alert": public(alert)}
    return json.dumps({**body, "sent_at": sent_at}, separators=(",", ":")).encode()


def summary_json(items: Sequence[tuple[str, dict[str, Any]]], sent_at: str) -> bytes:
    body = {
        "v": 1,
        "type": "summary",
        "count": len(items),
        "items": [{"transition": t, "alert": public(a)} for t, a in items],
        "sent_at": sent_at,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def subject_of(transition: str, alert: dict[str, Any]) -> str:
    where = f" {alert['device_id']}" if alert.get("device_id") else ""
    return f"[edgeorder] {transition}: {alert['kind']}{where}"


def _text(transition: str, alert: dict[str, Any]) -> str:
    lines = [
        f"Alert {alert['id']} {transition}: {alert['kind']}",
        f"device: {alert.get('device_id') or '(fleet)'}",
        f"state: {alert['state']}",
        f"since: {alert['since']}",
        f"detail: {alert['detail']}",
    ]
    if alert.get("acknowledged_by"):
        lines.append(f"acknowledged by {alert['acknowledged_by']} at {alert['acknowledged_at']}")
    if alert.get("cleared_at"):
        lines.append(f"cleared at {alert['cleared_at']}")
    return "\n".join(lines) + "\n"


def email_message(
    transition: str, alert: dict[str, Any], *, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject_of(transition, alert)
    msg["From"], msg["To"] = sender, ", ".join(recipients)
    msg["X-Edgeorder-Alert"] = f"{alert['id']} {transition}"
    msg.set_content(_text(transition, alert))
    return msg


def summary_email(
    items: Sequence[tuple[str, dict[str, Any]]], *, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[edgeorder] {len(items)} alert changes (summary: too many to mail each)"
    msg["From"], msg["To"] = sender, ", ".join(recipients)
    msg["X-Edgeorder-Alert"] = "summary"
    msg.set_content("\n".join(_text(t, a) for t, a in items))
    return msg
