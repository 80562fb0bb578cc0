"""Settings every process of the mesh shares, read from ``PORTICO_`` environment variables."""
