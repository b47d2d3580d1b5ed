"""The ``edgeorder`` command: one entry point that assembles protocol, agent, ingest, ordercore."""

__version__ = "0.1.0"

__all__ = ["__version__"]
