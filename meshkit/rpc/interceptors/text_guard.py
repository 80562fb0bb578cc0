"""Refuse request strings holding NUL characters before any handler sees them.

No Portico field has a use for U+0000, PostgreSQL's ``text`` cannot store it (the insert fails as an
internal error) and C-based consumers would cut the value short, so every backend answers it with
INVALID_ARGUMENT naming the field, once, here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from meshkit.rpc.context import Context
from meshkit.rpc.interceptors.base import Stream, Unary, WrappingInterceptor
from meshkit.rpc.status import INVALID_REQUEST, FieldViolation, abort

_NUL = "\x00"


def nul_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """One violation per string field (nested, repeated or map values too) that holds a NUL."""
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                found.extend(_check(field.message_type.fields_by_name["value"], item, f"{path}[{key}]"))
                if isinstance(key, str) and _NUL in key:
                    found.append((path, "must not contain NUL characters"))
        elif field.is_repeated:
            for index, item in enumerate(value):
                found.extend(_check(field, item, f"{path}[{index}]"))
        else:
            found.extend(_check(field, value, path))
    return found


def _check(field: FieldDescriptor, value: Any, path: str) -> list[FieldViolation]:
    if isinstance(value, Message):
        return nul_violations(value, f"{path}.")
    if field.type == FieldDescriptor.TYPE_STRING and _NUL in value:
        return [(path, "must not contain NUL characters")]
    return []


class TextGuardInterceptor(WrappingInterceptor):
    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        async def guarded(request: Any, context: Context) -> Any:
            if isinstance(request, Message) and (problems := nul_violations(request)):
                await abort(context, grpc.StatusCode.INVALID_ARGUMENT, INVALID_REQUEST, violations=problems)
            return await behavior(request, context)

        return guarded

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, Message) and (problems := nul_violations(request)):
                await abort(context, grpc.StatusCode.INVALID_ARGUMENT, INVALID_REQUEST, violations=problems)
            async for item in behavior(request, context):
                yield item

        return guarded
