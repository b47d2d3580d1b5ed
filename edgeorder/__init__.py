"""edgeorder: a button or sensor on a Raspberry Pi becomes a commerce order, exactly once.

The installed package holds every part under one name; in the repository each part is its own
top-level folder, symlinked here: ``edgeorder.protocol`` (protocol/), ``edgeorder.agent``
(agent/), ``edgeorder.ingest`` (ingest/), ``edgeorder.ordercore`` (ordercore/),
``edgeorder.bench`` (bench/). ``edgeorder.cli`` is the ``edgeorder`` command and
``edgeorder.demo`` the one-process demo. This module imports nothing, so the agent on a Pi
loads only what it needs.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
