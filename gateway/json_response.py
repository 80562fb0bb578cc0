"""JSON responses encoded with orjson: several times faster than the standard library's encoder.

The bytes are those of Starlette's :class:`JSONResponse` (compact separators, UTF-8, non-ASCII as is) for
what the gateway sends — the proto3 JSON mapping's values: strings (64-bit integers included), 32-bit
integers, booleans, null, lists, objects with string keys, finite floats. Only a float's spelling can
differ (orjson writes ``1e16`` where Python writes ``1e+16``), the same number to any JSON reader.
Non-finite floats never reach it: the mapping writes them as the strings ``"NaN"``/``"Infinity"``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
