"""Public topic names, and the tenant-scoped Kafka topic each one maps to; pure functions.

A public name is ``[A-Za-z0-9._-]{1,100}`` (the rule of ``broker.proto``, checked before a handler
runs). Tenant ``t``'s topic ``n`` lives in Kafka as ``portico.t.<esc(t)>.<esc(n)>``, where ``esc``
keeps letters and digits and writes ``-`` as ``--``, ``.`` as ``-d`` and ``_`` as ``-u``. That
encoding is

- injective: ``esc`` is a prefix-free code without ``.``, so the ``.`` between tenant and name is
  unambiguous and :func:`parse_internal` recovers both (the unit tests round-trip it);
- safe from Kafka's ``.``/``_`` rule: Kafka refuses a topic whose name equals an existing one once
  ``.`` and ``_`` are treated alike (they share metric names), and these names contain no ``_``;
- apart from Portico's event topics (``portico.users.v1`` …), which never sit under ``portico.t.``
  or ``portico.x.``: no public name can reach them.

A long tenant and name with many escapes could pass Kafka's 249-character limit; such a pair is
written ``portico.x.<packed>`` instead, the pair read as one number and written in base 63 (at most
215 characters), still reversible.
"""

from __future__ import annotations

import re
import string

NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
TENANT = re.compile(r"[A-Za-z0-9._-]{1,100}")
READABLE_PREFIX = "portico.t."
PACKED_PREFIX = "portico.x."
KAFKA_TOPIC_MAX = 249

_ESCAPES = {"-": "--", ".": "-d", "_": "-u"}
_UNESCAPES = {code[1]: char for char, code in _ESCAPES.items()}
# Packed form: "tenant/name" as digits of base 66 behind a leading 1, rewritten in base 63.
_PACK_IN = "/-._" + string.digits + string.ascii_uppercase + string.ascii_lowercase
_PACK_OUT = string.digits + string.ascii_uppercase + string.ascii_lowercase + "-"


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(char, char) for char in text)


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for char in chars:
        if char == "-":
            code = next(chars, "")
            if code not in _UNESCAPES:
                raise ValueError("not an escaped name")
            out.append(_UNESCAPES[code])
        else:
            out.append(char)
    return "".join(out)


def _pack(text: str) -> str:
    number = 1
    for char in text:
        number = number * len(_PACK_IN) + _PACK_IN.index(char)
    digits = []
    while number:
        number, digit = divmod(number, len(_PACK_OUT))
        digits.append(_PACK_OUT[digit])
    return "".join(reversed(digits))


def _unpack(packed: str) -> str:
    number = 0
    for char in packed:
        if char not in _PACK_OUT:
            raise ValueError("not a packed name")
        number = number * len(_PACK_OUT) + _PACK_OUT.index(char)
    chars = []
    while number > 1:
        number, digit = divmod(number, len(_PACK_IN))
        chars.append(_PACK_IN[digit])
    if number != 1:
        raise ValueError("not a packed name")
    return "".join(reversed(chars))


def internal_topic(tenant_id: str, name: str) -> str:
    """The Kafka topic of ``tenant_id``'s topic ``name`` (both already valid: ValueError otherwise)."""
    if not TENANT.fullmatch(tenant_id) or not NAME.fullmatch(name):
        raise ValueError("invalid tenant id or topic name")
    readable = f"{READABLE_PREFIX}{_escape(tenant_id)}.{_escape(name)}"
    if len(readable) <= KAFKA_TOPIC_MAX:
        return readable
    return PACKED_PREFIX + _pack(f"{tenant_id}/{name}")


def parse_internal(topic: str) -> tuple[str, str]:
    """``(tenant_id, name)`` of a topic made by :func:`internal_topic` (ValueError for any other)."""
    if topic.startswith(READABLE_PREFIX):
        tenant, dot, name = topic.removeprefix(READABLE_PREFIX).partition(".")
        if not dot:
            raise ValueError("not a tenant topic")
        found = _unescape(tenant), _unescape(name)
    elif topic.startswith(PACKED_PREFIX):
        tenant, slash, name = _unpack(topic.removeprefix(PACKED_PREFIX)).partition("/")
        found = tenant, name
        if not slash:
            raise ValueError("not a tenant topic")
    else:
        raise ValueError("not a tenant topic")
    if internal_topic(*found) != topic:  # one spelling per pair (e.g. no packed form of a short pair)
        raise ValueError("not a tenant topic")
    return found
