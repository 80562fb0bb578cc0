"""Local infrastructure for Portico without Docker: Kafka (Maven jars), Redis and PostgreSQL.

`python -m infra install` fetches/installs what is missing, `python -m infra run <service>` runs one
server in the foreground (for honcho), and `infra.local` starts throw-away servers for pytest sessions.
"""
