"""Broker backend: publish to and stream from tenant-scoped Kafka topics (broker.v1.MessageService)."""
