"""Access tokens on every call: verification, the auth backend's keys, revocation and the interceptor."""
