"""The device agent: GPIO button/sensor -> durable events over MQTT -> LED status.

``Agent(config).run(stop)`` runs one device; ``load_config(path)`` reads its firmware-config.
"""

from agent.config import AgentConfig, load_config
from agent.errors import AgentError, AgentNotRunningError, ConfigError, OutboxFullError
from agent.led_patterns import Pattern
from agent.runtime import Agent
from agent.version import FW_VERSION

__all__ = [
    "FW_VERSION",
    "Agent",
    "AgentConfig",
    "AgentError",
    "AgentNotRunningError",
    "ConfigError",
    "OutboxFullError",
    "Pattern",
    "load_config",
]
