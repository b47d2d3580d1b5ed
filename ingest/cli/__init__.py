"""The commands of ingest: ``edgeorder ingest`` (``run``), ``device`` and ``broker-auth``."""
