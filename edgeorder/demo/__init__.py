"""``edgeorder demo``: everything on one machine (embedded amqtt broker, order core, ingest,
simulated devices). ``cli`` runs it; ``broker``, ``fleet``, ``provision``, ``press`` and
``secrets`` are its parts."""
