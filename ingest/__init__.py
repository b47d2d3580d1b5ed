"""The ingestion service: MQTT events -> exactly-once orders, statuses back to the device.

Sub-packages by role, in the order an event meets them:

- ``mqtt/``: ``link`` (the one paho<->asyncio bridge), ``router`` (decode, validate, hand off),
  ``statuses`` and ``delivery`` (statuses out, tracked until the broker's PUBACK);
- ``domain/``: pure logic: ``rules`` (business rules), ``devices`` (the ``Device`` model),
  ``credentials``, ``firmware`` and ``mosquitto_files`` (provisioning formats);
- ``store/``: SQLite: ``db`` and ``migrations``, ``writer`` (the single writer, group commit),
  ``reader``, ``ledger`` (inbox/outbox/orders SQL), ``registry``, ``device_cache``;
- ``orders/``: ``outbox`` (the order worker, operators' buffer actions) and ``state_sync``
  (webhooks + polling of order states);
- ``connectors/``: one client per order platform;
- ``web/``: the REST API (``api``) and the operator dashboard;
- ``cli/``: the ``edgeorder ingest``, ``device``, ``broker-auth`` and ``tls`` commands.

``app`` and ``service`` assemble the pieces; ``settings`` is the process's one config model.
Import the module you need; this package itself stays import-light so the demo broker and the
agent's tools can use ``ingest.store.registry``.
"""

__all__: list[str] = []
