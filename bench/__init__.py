"""Benchmarks of Portico run with ghz against local processes; see docs/benchmarks.md."""
