"""grpc.aio server interceptors: one base that wraps handlers, and what each one adds around a call."""
