"""Every event channel of the mesh, in the order the AsyncAPI document lists them.

Each backend declares its own channel in its ``events.py``; this list (read by ``scripts/gen_asyncapi.py``
and its test) is the one place that gathers them, so no backend needs to know another's events.
"""

from __future__ import annotations

from backends.auth.events import AUTH
from backends.posts.events import POSTS
from backends.users.events import USERS
from meshkit.events.envelope import Channel

CHANNELS: tuple[Channel, ...] = (USERS, POSTS, AUTH)
