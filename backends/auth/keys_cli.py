"""``python -m backends.auth.keys_cli rotate|list``: rotate the auth backend's signing keys, or show them.

Settings come from the environment exactly as the auth backend reads them (``PORTICO_AUTH_KEYS_DIR``,
``PORTICO_AUTH_KEYS_PASSPHRASE``, ``PORTICO_AUTH_ACCESS_TOKEN_TTL``). The passphrase is deliberately not
an option: command lines are visible to every user of the host. Running backends pick a rotation up on
their next request (they watch the state file). Output shows kids and times, never key material.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from backends.auth.config import AuthSettings
from backends.auth.keys import (
    CLOCK_SKEW,
    JWKS_CACHE,
    KeyRecord,
    KeyStoreError,
    default_keep_after,
    rotate,
)
from backends.auth.keys.schedule import states
from backends.auth.keys.store import read_state


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Usage errors exit 1 like every other failure of this tool (argparse would use 2).
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _jwks_cache(settings: AuthSettings) -> timedelta:
    # The gateway's Cache-Control is fixed at 300 s; backends may be configured to cache longer.
    return max(JWKS_CACHE, timedelta(seconds=settings.jwks_cache_seconds))


def _parser(settings: AuthSettings) -> argparse.ArgumentParser:
    ttl = timedelta(seconds=settings.access_token_ttl)
    cache = _jwks_cache(settings)
    common = _Parser(add_help=False)
    common.add_argument(
        "--keys-dir",
        type=Path,
        default=settings.keys_dir,
        help="keys directory (PORTICO_AUTH_KEYS_DIR; default %(default)s)",
    )
    parser = _Parser(
        prog="python -m backends.auth.keys_cli", description="Rotate or list the auth backend's signing keys."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rotate_cmd = commands.add_parser(
        "rotate", parents=[common], help="publish the next key now; it signs after --publish-ahead"
    )
    rotate_cmd.add_argument(
        "--publish-ahead",
        type=float,
        metavar="S",
        default=(cache + CLOCK_SKEW).total_seconds(),
        help=f"seconds the new key is published before it signs (>= the {cache.total_seconds():.0f} s "
        "JWKS cache; default cache + 60 s = %(default)s)",
    )
    rotate_cmd.add_argument(
        "--keep-after",
        type=float,
        metavar="S",
        default=default_keep_after(ttl).total_seconds(),
        help="seconds the old key stays published once the new one signs "
        "(>= PORTICO_AUTH_ACCESS_TOKEN_TTL; default TTL + 60 s = %(default)s)",
    )
    commands.add_parser("list", parents=[common], help="show the keys and their schedule")
    return parser


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(records: Sequence[KeyRecord], now: datetime) -> str:
    header = ("KID", "STATE", "CREATED", "SIGNS_FROM", "RETIRE_AFTER")
    rows = [
        (r.kid, state, _time(r.created_at), _time(r.signs_from), _time(r.retire_after))
        for r, state in zip(records, states(records, now), strict=True)
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _rotate(args: argparse.Namespace, settings: AuthSettings, passphrase: bytes | None) -> None:
    publish_ahead = timedelta(seconds=args.publish_ahead)
    keep_after = timedelta(seconds=args.keep_after)
    ttl = timedelta(seconds=settings.access_token_ttl)
    cache = _jwks_cache(settings)
    if publish_ahead < cache:
        raise ValueError(
            f"--publish-ahead must be at least {cache.total_seconds():.0f} s, the verifiers' JWKS "
            "cache time, or some of them would meet tokens signed by a key they have not fetched yet"
        )
    if keep_after < ttl:
        raise ValueError(
            f"--keep-after must be at least the access-token TTL ({ttl.total_seconds():.0f} s), or tokens "
            "signed by the old key would stop verifying before they expire"
        )
    now = datetime.now(UTC)
    kid = rotate(args.keys_dir, passphrase, now, publish_ahead=publish_ahead, keep_after=keep_after)
    print(f"new key {kid} is published now and signs from {_time(now + publish_ahead)}")
    _list(args.keys_dir)


def _list(directory: Path) -> None:
    records, _ = read_state(directory)
    print(_table(records, datetime.now(UTC)))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = AuthSettings()
    except ValidationError as exc:
        # Without the input values: they could include secrets from the environment.
        for error in exc.errors(include_input=False):
            field = ".".join(str(part) for part in error["loc"])
            print(f"error: configuration {field}: {error['msg']}", file=sys.stderr)
        return 1
    args = _parser(settings).parse_args(argv)
    secret = settings.keys_passphrase
    passphrase = secret.get_secret_value().encode() if secret is not None else None
    try:
        if args.command == "rotate":
            _rotate(args, settings, passphrase or None)
        else:
            _list(args.keys_dir)
    except (KeyStoreError, ValueError, OverflowError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
