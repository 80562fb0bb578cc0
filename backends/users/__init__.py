"""Users backend: profiles, tenants, search and soft delete (users.v1.UserService)."""
