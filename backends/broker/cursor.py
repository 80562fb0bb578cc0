"""A stream's cursor: where a subscription stands in every partition, so a client can continue after it.

``0:41,1:17,2:-1`` says: partition 0 was delivered up to offset 41, partition 1 up to 17, partition 2
nothing yet. One ``<partition>:<offset>`` per partition, not just the last message's: a topic has
several partitions read side by side, and continuing from one of them alone would repeat or skip
messages of the others.

A cursor comes from the client (``from`` or ``Last-Event-ID``), so it is parsed strictly and bounded.
"""

from __future__ import annotations

from collections.abc import Mapping

# Room for a few hundred partitions with large offsets; a longer value is not one of ours.
MAX_CHARS = 8192
_MAX_PARTITION = 2**31 - 1  # Kafka partitions are int32
_MAX_OFFSET = 2**63 - 1
DESCRIPTION = "must be 'latest', 'earliest' or a cursor such as '0:41,1:17'"

Positions = dict[int, int]  # partition → offset of the last message delivered (-1: none yet)


class CursorError(ValueError):
    """Not a cursor (the message says why, for the client)."""


def parse(text: str) -> Positions:
    if len(text) > MAX_CHARS:
        raise CursorError(f"a cursor is at most {MAX_CHARS} characters")
    positions: Positions = {}
    for entry in text.split(","):
        partition, colon, offset = entry.partition(":")
        if not colon or not _is_number(partition) or not _is_number(offset.removeprefix("-")):
            raise CursorError(DESCRIPTION)
        p, o = int(partition), int(offset)
        if p > _MAX_PARTITION or not -1 <= o <= _MAX_OFFSET:
            raise CursorError("a partition or offset of the cursor is out of range")
        if p in positions:
            raise CursorError("the cursor names a partition twice")
        positions[p] = o
    return positions


def render(positions: Mapping[int, int]) -> str:
    return ",".join(f"{partition}:{positions[partition]}" for partition in sorted(positions))


def _is_number(text: str) -> bool:
    # ASCII digits only (str.isdigit also takes other scripts' digits), and short enough to parse cheaply.
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit()
