"""``python -m backends.posts``: serve ``posts.v1.PostService`` until SIGTERM.

Only the settings are read before this process decides to serve or to supervise copies of itself
(``PORTICO_POSTS_PROCESSES`` > 1): a supervisor never imports the backend (:mod:`meshkit.supervisor`).
"""

from __future__ import annotations

from backends.posts.config import PostsSettings
from meshkit.shutdown import exit_now
from meshkit.supervisor import supervise_backend

if __name__ == "__main__":
    status = supervise_backend(PostsSettings(), "posts")
    if status is not None:
        exit_now(status)
    from backends.posts.wiring import SPEC
    from meshkit.rpc.server import run_backend

    run_backend(SPEC)
