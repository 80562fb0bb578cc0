"""Portico's gRPC backends: users, auth, posts and broker, on one shared kit."""
