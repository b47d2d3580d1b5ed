"""Orders: the order-outbox worker and the order-state sync (webhooks and polling)."""
