"""Store records → protobuf messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stubs.users.v1 import users_pb2

if TYPE_CHECKING:
    from backends.users.store import UserRecord


def user_message(record: UserRecord) -> users_pb2.User:
    user = users_pb2.User(
        id=record.id,
        tenant_id=record.tenant_id,
        username=record.username,
        email=record.email,
        first_name=record.first_name,
        last_name=record.last_name,
        phone=record.phone,
        avatar_url=record.avatar_url,
        roles=list(record.roles),
        is_active=record.is_active,
    )
    user.created_at.FromDatetime(record.created_at)
    user.updated_at.FromDatetime(record.updated_at)
    return user
