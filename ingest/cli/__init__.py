"""The commands of ingest: ``edgeorder ingest`` (``run``), ``device``, ``broker-auth`` and ``tls``
(``system`` holds what the root-run ones share: atomic owned files, acting as the data
directory's owner, reloading the broker)."""
