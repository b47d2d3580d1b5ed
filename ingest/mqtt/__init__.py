"""The MQTT side of ingest: the link, the message router, statuses out and their delivery."""
