"""Alerts: pure rules in ``ingest.domain.alerts``, SQL in ``ingest.store.alerts``; here the
evaluator task of the service and the notifications (signed webhook, e-mail)."""

from edgeorder.ingest.alerting.service import AlertService

__all__ = ["AlertService"]
