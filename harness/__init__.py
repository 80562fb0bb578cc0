"""The test and benchmark harness: what ``tests/`` and ``bench/`` start, call and check Portico with.

Processes and the mesh:
- ``processes``: Portico's processes as subprocesses, on ``infra.procs``;
- ``backends``: one backend process (:class:`~harness.backends.BackendProcess`), its health and metrics;
- ``infra``: Kafka, Redis and PostgreSQL for a session (the environment's, containers, or ``infra``'s);
- ``mesh``: the four backends and the gateway; ``gateway``: gateway readiness and offline settings;
- ``users``, ``auth``, ``posts``, ``broker``: one backend (or users with auth) and helpers to call it.

Calls and data:
- ``tokens``: a test token issuer with a real JWKS endpoint; ``certs``: a throw-away CA;
- ``accounts``: users registered through the gateway; ``traffic``: traffic for every dashboard panel;
- ``events``, ``kafka``: outbox and relay steps, topics and reading events back; ``images``: sample images;
- ``clients``: the example clients built and run; ``procfile``: the processes the Procfile starts.

Subpackages: ``stores`` (migrated databases for store tests), ``servers`` (what the tests run beside
Portico: an OTLP collector, a real Prometheus, S3, scripted upstreams) and ``programs`` (scripts run as
subprocesses with ``python -m``).
"""
