"""Every environment variable of the mesh, found by walking the settings classes of the processes.

The processes are those the Procfile starts with ``python -m <package>`` whose package has a ``config``
module; each row says what a variable is called (and the older names still accepted), its type and
default, which processes read it and what it does. ``scripts/gen_config_docs.py`` renders the rows as
``docs/configuration.md`` and the tests check the naming scheme on them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"
# The mesh-wide scopes (modules of this package), in the order of the reference; each process's own
# settings follow, in the order of the Procfile.
MESH_SCOPES = ("stores", "tokens", "peers", "events", "serve", "telemetry")


@dataclass(frozen=True)
class Row:
    """One environment variable: its names, type, default, scope, readers and description."""

    name: str
    fallbacks: tuple[str, ...]
    type: str
    default: str
    scope: str
    read_by: tuple[str, ...]
    description: str


def process_settings(procfile: Path = PROCFILE) -> dict[str, type[BaseSettings]]:
    """Each process of the Procfile that has settings, and the settings class its ``config`` declares."""
    found: dict[str, type[BaseSettings]] = {}
    for line in procfile.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"(\w+):\s*(?:exec\s+)?python -m ([\w.]+)\s*", line)
        if match is None:
            continue
        process, package = match.groups()
        try:
            config = importlib.import_module(f"{package}.config")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.config":
                raise
            continue  # a process without settings of its own (the local Kafka and Redis)
        declared = [
            value
            for value in vars(config).values()
            if isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == config.__name__
        ]
        if len(declared) != 1:
            raise LookupError(f"{config.__name__} should declare one settings class, not {len(declared)}")
        found[process] = declared[0]
    return found


def env_names(settings: type[BaseSettings], field_name: str) -> tuple[str, ...]:
    """The variables a field is read from, the preferred name first."""
    alias = settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    if isinstance(alias, str):
        return (alias,)
    return (f"{settings.model_config.get('env_prefix', '')}{field_name}".upper(),)


def scope_of(process: str, settings: type[BaseSettings], field_name: str) -> str:
    """The scope of a field: the mesh-wide module of this package that declares it (``serve``…), else
    the process's own."""
    for cls in reversed(settings.__mro__):
        if field_name in vars(cls).get("__annotations__", {}):
            package, _, module = cls.__module__.rpartition(".")
            return module if package == __package__ else process
    raise LookupError(field_name)


def type_name(annotation: Any) -> str:
    """A short spelling of a field's type: ``int``, ``Path | None``, ``Literal['json', 'text']``."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return re.sub(r"\b(?:[a-z_]\w*\.)+(\w+)", r"\1", text)


def default_text(field: FieldInfo) -> str:
    """The default as the reference shows it; a computed default by its factory's docstring."""
    if field.default_factory is not None:
        return (field.default_factory.__doc__ or "computed").strip().rstrip(".").replace("``", "`")
    value = field.get_default()
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return "empty"
    return f"`{value}`"


def rows(processes: Mapping[str, type[BaseSettings]] | None = None) -> Iterator[Row]:
    """One row per variable, in scope order, then by name; a variable read by several processes once."""
    processes = processes or process_settings()
    found: dict[str, Row] = {}
    for process, settings in processes.items():
        for field_name, field in settings.model_fields.items():
            names = env_names(settings, field_name)
            seen = found.get(names[0])
            if seen is not None:
                found[names[0]] = replace(seen, read_by=(*seen.read_by, process))
                continue
            found[names[0]] = Row(
                name=names[0],
                fallbacks=names[1:],
                type=type_name(field.annotation),
                default=default_text(field),
                scope=scope_of(process, settings, field_name),
                read_by=(process,),
                description=field.description or "",
            )
    order = [*MESH_SCOPES, *processes]
    yield from sorted(found.values(), key=lambda row: (order.index(row.scope), row.name))


def declarations(
    processes: Mapping[str, type[BaseSettings]] | None = None,
) -> Iterator[tuple[str, str, str]]:
    """``(variable, process, default)`` for every variable each process reads, to compare defaults."""
    for process, settings in (processes or process_settings()).items():
        for field_name, field in settings.model_fields.items():
            for name in env_names(settings, field_name):
                yield name, process, default_text(field)


# Heading and one-line introduction of each mesh-wide scope's table.
_MESH_TITLES = {
    "stores": ("Stores", "Where state is kept (`meshkit/config/stores.py`)."),
    "tokens": ("Access tokens", "How every process verifies access tokens (`meshkit/config/tokens.py`)."),
    "peers": (
        "Peers",
        "Where the backends listen, for the processes that call them (`meshkit/config/peers.py`).",
    ),
    "events": ("Events", "Kafka, the outbox and the event consumers (`meshkit/config/events.py`)."),
    "serve": (
        "Serving gRPC",
        "Where each backend listens, its TLS files, whose forwarded client address it believes, health "
        "checks and shutdown (`meshkit/config/serve.py`).",
    ),
    "telemetry": (
        "Telemetry",
        "Traces and logs, the same for every process (`meshkit/config/telemetry.py`).",
    ),
}


def _title(scope: str, processes: Mapping[str, type[BaseSettings]]) -> tuple[str, str]:
    if scope in _MESH_TITLES:
        return _MESH_TITLES[scope]
    path = processes[scope].__module__.replace(".", "/") + ".py"
    return f"The {scope} process", f"`{path}`: {processes[scope].__doc__ or ''}".strip()


_PREAMBLE = """\
# Configuration

<!-- Generated by scripts/gen_config_docs.py from the settings classes; do not edit by hand. -->

Every process reads its settings from environment variables, each declared once with its default in
the settings class of its scope. A mesh-wide setting is called `PORTICO_<NAME>` and means the same in
every process that reads it; a process's own setting is called `PORTICO_<PROCESS>_<NAME>` (`GATEWAY`,
`USERS`, `AUTH`, `POSTS`, `BROKER`). The address of a backend is mesh-wide and named after that backend
(`PORTICO_USERS_TARGET` is where every caller finds the users backend). Where an older name is listed,
it is still accepted when the preferred one is unset. Ports and limits that scripts and deployment files
repeat come from `meshkit/config/defaults.py`.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(processes: Mapping[str, type[BaseSettings]] | None = None) -> str:
    """The configuration reference: one table per scope."""
    processes = processes or process_settings()
    by_scope: dict[str, list[Row]] = {}
    for row in rows(processes):
        by_scope.setdefault(row.scope, []).append(row)
    parts = [_PREAMBLE]
    for scope, found in by_scope.items():
        title, intro = _title(scope, processes)
        parts.append(f"\n## {title}\n\n{intro}\n\n")
        parts.append("| variable | type | default | read by | description |\n|---|---|---|---|---|\n")
        for row in found:
            name = f"`{row.name}`" + "".join(f" (or `{old}`)" for old in row.fallbacks)
            parts.append(
                f"| {name} | `{_cell(row.type)}` | {_cell(row.default)} | {', '.join(row.read_by)} "
                f"| {_cell(row.description)} |\n"
            )
    return "".join(parts)
