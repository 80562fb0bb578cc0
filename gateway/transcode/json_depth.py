"""How deeply a JSON text nests, found by a linear scan before any parser recurses into it.

Python's ``json`` (like protobuf's JSON parser after it) recurses once per ``[`` or ``{``: a body of
100 000 brackets exhausts the interpreter's stack. The scan below never recurses: it drops the strings
(so brackets inside them do not count), keeps only the brackets, and sums +1/-1 over them, in C
iterators. A parser reads strings exactly as the scan does (from an opening quote to the next unescaped
one) or stops at an error before going deeper, so the parser never nests deeper than the scan says.
"""

from __future__ import annotations

import re
from itertools import accumulate

# The default bound: Portico's deepest request today nests 2 levels (``{"roles": [...]}``).
MAX_JSON_DEPTH = 32

# A string, escapes included; an unterminated one runs to the end (the parser refuses it anyway).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Each bracket's step in depth, indexed by its byte; only the four brackets are ever looked up.
_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _STEP[_open], _STEP[_close] = 1, -1


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in the UTF-8 JSON text ``raw`` (0 for a scalar)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def nesting_exceeds(raw: bytes, limit: int) -> bool:
    """True when ``raw`` nests arrays and objects deeper than ``limit`` levels."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # too few brackets to nest that deep: no scan
        return False
    return json_depth(raw) > limit
