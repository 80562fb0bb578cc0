"""Command line: `python -m infra install [--for up|test] [--only a,b]`, `python -m infra run <service>`."""

from __future__ import annotations

import argparse

from infra import apt, install, run


def _components(value: str) -> list[str]:
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(install.COMPONENTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown component(s) {unknown}; choose from {install.COMPONENTS}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="install/fetch what is missing (idempotent)")
    chosen = inst.add_mutually_exclusive_group()
    chosen.add_argument(
        "--for",
        dest="purpose",
        choices=sorted(install.PURPOSES),
        default="test",
        help="what `make up` needs, or that and what the tests add (the default: everything)",
    )
    chosen.add_argument(
        "--only",
        type=_components,
        default=None,
        help=f"comma-separated subset of {','.join(install.COMPONENTS)}",
    )
    runp = sub.add_parser("run", help="run one server in the foreground (for honcho)")
    runp.add_argument("service", choices=sorted(run.RUNNERS))
    args = parser.parse_args(argv)

    if args.command == "install":
        try:
            install.install(args.only or list(install.PURPOSES[args.purpose]))
        except (install.InstallError, apt.AptError, RuntimeError) as exc:
            print(f"[install] error: {exc}", flush=True)
            return 1
        return 0
    try:
        return run.run(args.service)
    except RuntimeError as exc:
        print(f"[run] {args.service}: error: {exc}", flush=True)
        return 1
