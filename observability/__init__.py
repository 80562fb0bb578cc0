"""The one telemetry set-up every Portico process calls: traces, Prometheus metrics and JSON logs."""
