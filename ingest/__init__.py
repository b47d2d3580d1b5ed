"""The ingestion service: MQTT events -> exactly-once orders, statuses back to the device.

Modules by role: ``mqtt`` (the one paho<->asyncio bridge), ``router`` (decode, validate, hand
off), ``writer`` (one SQLite writer, group commit), ``ledger`` (inbox/outbox/orders SQL),
``rules`` (pure business rules), ``outbox`` (order worker, operator buffer actions),
``orderstate`` (webhook + polling), ``statuses`` and ``delivery`` (statuses out, tracked
until the broker's PUBACK), ``devices`` (in-memory registry cache),
``registry`` and ``firmware`` (provisioning), ``api`` (REST), ``app``/``service`` (assembly),
``cli``/``cli_device``/``cli_broker_auth`` (commands). Import the module you need; this package
itself stays import-light so the broker and the agent's tools can use ``ingest.registry``.
"""

__all__: list[str] = []
