"""gRPC: the backend server and its runtime, health, TLS, status helpers and interceptors."""
