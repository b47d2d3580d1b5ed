"""How the kit logs: through the caller's logger, or the standard library's.

The services log with structlog (``log.warning("writer.slow_commit", ms=12.5)``); the kit must not
import it, so it takes any object with that shape (``Log``), and falls back to ``logging``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

__all__ = ["Log", "StdLog"]


class Log(Protocol):
    """A structlog-style logger: an event name and key/value pairs."""

    def debug(self, event: str, **kw: Any) -> Any: ...

    def info(self, event: str, **kw: Any) -> Any: ...

    def warning(self, event: str, **kw: Any) -> Any: ...

    def error(self, event: str, **kw: Any) -> Any: ...


class StdLog:
    """``Log`` over a standard-library logger: ``event key=value ...``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, kw: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        exc_info = kw.pop("exc_info", None)
        pairs = " ".join(f"{key}={value!r}" for key, value in kw.items())
        self._logger.log(level, "%s %s", event, pairs, exc_info=exc_info)

    def debug(self, event: str, **kw: Any) -> None:
        self._log(logging.DEBUG, event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._log(logging.INFO, event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._log(logging.WARNING, event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._log(logging.ERROR, event, kw)
