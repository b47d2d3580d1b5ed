"""Helpers shared by the test suite and the benchmark: real brokers, MQTT probes, subprocesses."""
