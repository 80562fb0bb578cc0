"""What the posts backend publishes (``portico.posts.v1``) and consumes (``user.deleted`` from users).

The users topic is named here, as the contract names it, rather than imported: a backend never imports
another backend.
"""

from __future__ import annotations

from meshkit.events.envelope import Channel

POSTS = Channel(
    "portico.posts.v1",
    publisher="posts",
    entity="post",
    types=("post.created", "post.updated", "post.deleted"),
    description="Changes to posts.",
)

USERS_TOPIC = "portico.users.v1"
