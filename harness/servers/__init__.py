"""Servers the tests run beside Portico: an OTLP collector, a real Prometheus, S3, scripted upstreams."""
