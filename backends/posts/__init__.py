"""Posts backend: posts and their images (posts.v1.PostService)."""
