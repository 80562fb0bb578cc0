"""gRPC: the backend server and its runtime, the servicer context helpers, health, TLS, status (abort)
and interceptors."""
