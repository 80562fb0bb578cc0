"""orjson for JSON bodies: the same bytes Starlette's JSONResponse writes for what the gateway sends
(the proto3 JSON mapping's values), and the same numbers where only a float's spelling differs."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2, wrappers_pb2
from starlette.responses import JSONResponse

from gateway.json_response import FastJSONResponse
from gateway.transcode.response import json_reply, to_json
from stubs.users.v1 import users_pb2


def _both(content: Any) -> tuple[bytes, bytes]:
    return bytes(FastJSONResponse(content).body), bytes(JSONResponse(content).body)


def test_the_bytes_of_a_reply_are_those_of_the_standard_encoder() -> None:
    user = users_pb2.User(
        id="6f1c",
        username='zoë \u2028 "quoted" \\ back\tslash \x01 \x7f 😀',
        email="ann@example.com",
        roles=["user", "admin"],
        is_active=True,
    )
    body = json_reply(users_pb2.GetUserResponse(user=user), response_body="user").body
    fast, standard = _both(body)
    assert fast == standard
    assert b"\xf0\x9f\x98\x80" in fast  # non-ASCII as UTF-8, not \u escapes, as before


def test_64_bit_integers_stay_strings_and_floats_the_same_numbers() -> None:
    value = struct_pb2.Value()
    value.list_value.values.add().number_value = 1e16
    value.list_value.values.add().number_value = 0.1
    value.list_value.values.add().number_value = -2.5e-7
    content = {
        "int64": to_json(wrappers_pb2.Int64Value(value=2**62)),
        "uint64": to_json(wrappers_pb2.UInt64Value(value=2**64 - 1)),
        "floats": to_json(struct_pb2.Struct(fields={"v": value})),
        "nan": to_json(wrappers_pb2.DoubleValue(value=float("nan"))),
        "nested": {"null": None, "list": [], "t": True, "n": -(2**31)},
    }
    fast, standard = _both(content)
    assert json.loads(fast) == json.loads(standard)
    assert json.loads(fast)["uint64"] == str(2**64 - 1)  # a string: no reader loses digits
    assert json.loads(fast)["nan"] == "NaN"
