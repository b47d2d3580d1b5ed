"""The firmware version an agent reports in events, presence and telemetry."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["FW_VERSION"]

try:
    FW_VERSION: str = version("edgeorder")
except PackageNotFoundError:  # running from a checkout that was never installed
    FW_VERSION = "0.1.0"
