"""A route table replaced by a refresh is freed, with its descriptor pool, after answers were shaped
and /openapi.json was built from it: nothing memoised per descriptor keeps an old pool alive, so the
gateway's memory does not grow with every refresh."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor

from gateway.openapi.comments import load_comments
from gateway.openapi.document import build_document
from gateway.routing.live import DESCRIPTOR_SET
from gateway.routing.sources import load_descriptor_set
from gateway.routing.table import RouteTable, build_table
from gateway.transcode.memo import memo_by_descriptor
from gateway.transcode.response import to_json
from stubs.users.v1 import users_pb2


def _fresh_table(version: int) -> RouteTable:
    """What a refresh does: the services resolved in a fresh descriptor pool, a new table."""
    table = build_table(load_descriptor_set(DESCRIPTOR_SET), version=version).table
    assert table is not None
    return table


def _serve(table: RouteTable) -> list[weakref.ref[type]]:
    """Shape an answer of every route and build the document; weak references to the message types."""
    kept = []
    for route in table.routes:
        cls = message_factory.GetMessageClass(route.output)
        to_json(cls())
        kept.append(weakref.ref(cls))
    build_document(table, load_comments(DESCRIPTOR_SET), version="test")
    return kept


def test_a_replaced_route_table_is_freed_after_serving() -> None:
    refs = _serve(_fresh_table(1))
    for version in range(2, 6):  # later refreshes, each replacing the table before
        _serve(_fresh_table(version))
    gc.collect()
    alive = [ref for ref in refs if ref() is not None]
    assert not alive, f"{len(alive)} message types of a replaced table are still alive"


def _names(table: RouteTable, name_of: Callable[[Descriptor], str]) -> None:
    for route in table.routes:  # in a function of its own: no loop variable outlives the table
        name_of(route.output)


def test_memo_computes_once_per_type_and_forgets_dead_types() -> None:
    calls: list[str] = []

    @memo_by_descriptor
    def name_of(descriptor: Descriptor) -> str:
        calls.append(descriptor.full_name)
        return descriptor.full_name

    assert name_of(users_pb2.User.DESCRIPTOR) == name_of(users_pb2.User.DESCRIPTOR) == "users.v1.User"
    assert calls == ["users.v1.User"]
    for version in range(3):
        _names(_fresh_table(version), name_of)
    gc.collect()
    assert len(name_of) == 1  # the stubs' User (alive for good); every refreshed table's types are gone
