"""The event backbone: envelope and channels, outbox, relay, idempotent consumers, lag, retention and
the AsyncAPI document."""
