"""Contract version and limits that both ends must agree on."""

CONTRACT_VERSION = 1
"""The ``v`` field of every payload; bumped only with a new topic root."""

TOPIC_ROOT = f"edgeorder/v{CONTRACT_VERSION}/devices"

MAX_EVENT_BYTES = 4096
"""An ``Event`` payload larger than this is rejected as ``oversize``."""
