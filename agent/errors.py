"""Errors of the device agent."""

from __future__ import annotations

__all__ = ["AgentError", "AgentNotRunningError", "ConfigError", "OutboxFullError"]


class AgentError(Exception):
    """Base class of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """A firmware-config file that cannot be used; ``errors`` lists every problem.

    Each entry reads ``FILE: field.path: reason``; ``str()`` joins them one per line.
    """

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = path
        self.errors = errors
        super().__init__("\n".join(errors))


class OutboxFullError(AgentError):
    """The outbox holds ``max_events`` and its overflow policy is ``refuse_new``."""


class AgentNotRunningError(AgentError):
    """``press``/``sensor`` was called before ``Agent.run`` started (or after it ended)."""
