"""Call ``users.v1.UserService/GetUser`` through the generated stubs and print the user as JSON.

    .venv/bin/python examples/clients/python/get_user.py --target 127.0.0.1:50051 --token "$TOKEN" \\
        --user-id "$ID"

Each option falls back to ``PORTICO_USERS_TARGET``, ``PORTICO_TOKEN`` and ``PORTICO_USER_ID``. Prints the
user (proto field names, proto3 JSON mapping) and exits 0; on a gRPC error prints
``{"error": {"code": "<CODE_NAME>", "message": ...}}`` and exits 1; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # run as a script: make `stubs` (at the project root) importable
    sys.path.insert(0, str(ROOT))

from stubs.users.v1 import users_pb2, users_pb2_grpc  # noqa: E402

DEADLINE_SECONDS = 5.0


def print_json(value: Any) -> None:
    """Two-space indented JSON, non-ASCII kept: the same layout the Node and Go clients print."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def get_user(target: str, token: str, user_id: str) -> users_pb2.User:
    metadata: tuple[tuple[str, str | bytes], ...] = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(target) as channel:
        reply = users_pb2_grpc.UserServiceStub(channel).GetUser(
            users_pb2.GetUserRequest(user_id=user_id), timeout=DEADLINE_SECONDS, metadata=metadata
        )
    return reply.user


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GetUser from the users backend, printed as JSON.")
    parser.add_argument("--target", default=os.environ.get("PORTICO_USERS_TARGET", ""))
    parser.add_argument(
        "--token", default=os.environ.get("PORTICO_TOKEN", ""), help="empty sends no authorization"
    )
    parser.add_argument("--user-id", default=os.environ.get("PORTICO_USER_ID", ""))
    args = parser.parse_args(argv)
    if not args.target or not args.user_id:
        parser.error("--target and --user-id (or PORTICO_USERS_TARGET, PORTICO_USER_ID) are required")

    try:
        user = get_user(args.target, args.token, args.user_id)
    except grpc.RpcError as error:
        if not isinstance(error, grpc.Call):  # every error of a unary call is also its grpc.Call
            raise
        print_json({"error": {"code": error.code().name, "message": error.details() or ""}})
        return 1
    print_json(json_format.MessageToDict(user, preserving_proto_field_name=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
