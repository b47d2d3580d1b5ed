"""Pure logic of ingest (no I/O): business rules, the device model, provisioning formats."""
