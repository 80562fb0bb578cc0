"""Auth backend: credentials, tokens and signing keys (auth.v1.AuthService)."""
