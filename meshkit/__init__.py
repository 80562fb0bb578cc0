"""Shared plumbing for every Portico backend: gRPC server, config, health, metrics, Kafka broker."""
