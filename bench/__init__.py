"""Benchmarks of Portico run with ghz against local processes; see bench/README.md."""
