"""Memoising a function of a message descriptor without keeping the descriptor alive.

The live route table is rebuilt from server reflection on an interval, each time in a fresh descriptor
pool. A ``functools.cache`` keyed by descriptor would hold every pool ever built (a few hundred KiB
each, one every refresh: memory that grows for as long as the gateway runs). Descriptors cannot be
weakly referenced, but the message class of a descriptor can, and it lives exactly as long as its
pool: so results are kept in a ``WeakKeyDictionary`` by message class, and an entry leaves with the
table that made it.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

T = TypeVar("T")


class DescriptorMemo(Generic[T]):
    """``fn(descriptor)``, computed once per live message type."""

    def __init__(self, fn: Callable[[Descriptor], T]) -> None:
        self._fn = fn
        self._results: weakref.WeakKeyDictionary[type[Message], T] = weakref.WeakKeyDictionary()
        functools.update_wrapper(self, fn)

    def __call__(self, descriptor: Descriptor) -> T:
        # GetMessageClass is itself cached on the descriptor by protobuf, so this is a lookup.
        key = message_factory.GetMessageClass(descriptor)
        try:
            return self._results[key]
        except KeyError:
            value = self._results[key] = self._fn(descriptor)
            return value

    def __len__(self) -> int:
        """How many results are kept (those of message types still alive)."""
        return len(self._results)


def memo_by_descriptor(fn: Callable[[Descriptor], T]) -> DescriptorMemo[T]:
    """Decorator: like ``functools.cache`` for a one-argument function of a descriptor, but an entry
    lasts only as long as the descriptor's pool (see the module docstring)."""
    return DescriptorMemo(fn)
