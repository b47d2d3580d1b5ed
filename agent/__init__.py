"""The device agent: GPIO button/sensor -> durable events over MQTT -> LED status.

``Agent(config).run(stop)`` runs one device; ``load_config(path)`` reads its firmware-config.
"""

from edgeorder.agent.config import AgentConfig, load_config
from edgeorder.agent.errors import AgentError, AgentNotRunningError, ConfigError, OutboxFullError
from edgeorder.agent.runtime import Agent
from edgeorder.agent.version import FW_VERSION
from edgeorder.protocol.led import Pattern

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
