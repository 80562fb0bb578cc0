"""REST ↔ gRPC transcoding as pure functions over protobuf messages and descriptors.

- `request.build_request`: path variables, query string and JSON body → request message.
- `response.json_reply` / `response.binary_reply`: response message → success status and body.
- `errors.from_rpc_error` / `errors.from_transcode_error`: failures → the contract's error fields.

No Starlette and no network here: the gateway's route handlers call these per request.
"""
