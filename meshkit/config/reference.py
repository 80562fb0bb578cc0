"""Every environment variable of the mesh, found by walking the settings classes of the processes.

Each row says what a variable is called (and the older names still accepted), its type and default,
which processes read it and what it does; ``scripts/gen_config_docs.py`` renders the rows as
``docs/configuration.md`` and the tests check the naming scheme on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from meshkit.config.base import PROCESSES

# The order of the scopes in the reference: the mesh-wide pieces, then each process's own settings.
SCOPES = ("stores", "tokens", "peers", "events", "serve", "telemetry", *PROCESSES)


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


def process_settings() -> dict[str, type[BaseSettings]]:
    """Each process of the mesh and its settings class."""
    from backends.auth.config import AuthSettings
    from backends.broker.config import BrokerSettings
    from backends.posts.config import PostsSettings
    from backends.users.config import UsersSettings
    from gateway.config import GatewaySettings

    return {
        "gateway": GatewaySettings,
        "users": UsersSettings,
        "auth": AuthSettings,
        "posts": PostsSettings,
        "broker": BrokerSettings,
    }


def env_names(settings: type[BaseSettings], field_name: str) -> tuple[str, ...]:
    """The variables a field is read from, the preferred name first."""
    alias = settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    if isinstance(alias, str):
        return (alias,)
    return (f"{settings.model_config.get('env_prefix', '')}{field_name}".upper(),)


def scope_of(settings: type[BaseSettings], field_name: str) -> str:
    """The scope of a field: the module of the most basic class that declares it (``serve``, ``auth``…)."""
    for cls in reversed(settings.__mro__):
        if field_name in vars(cls).get("__annotations__", {}):
            module = cls.__module__
            return (
                module.rsplit(".", 1)[-1] if module.startswith("meshkit.config.") else module.split(".")[-2]
            )
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
    found: dict[str, Row] = {}
    for process, settings in (processes or process_settings()).items():
        for field_name, field in settings.model_fields.items():
            names = env_names(settings, field_name)
            seen = found.get(names[0])
            if seen is not None:
                found[names[0]] = Row(**{**vars(seen), "read_by": (*seen.read_by, process)})
                continue
            found[names[0]] = Row(
                name=names[0],
                fallbacks=names[1:],
                type=type_name(field.annotation),
                default=default_text(field),
                scope=scope_of(settings, field_name),
                read_by=(process,),
                description=field.description or "",
            )
    yield from sorted(found.values(), key=lambda row: (SCOPES.index(row.scope), row.name))


def declarations(
    processes: Mapping[str, type[BaseSettings]] | None = None,
) -> Iterator[tuple[str, str, str]]:
    """``(variable, process, default)`` for every variable each process reads, to compare defaults."""
    for process, settings in (processes or process_settings()).items():
        for field_name, field in settings.model_fields.items():
            for name in env_names(settings, field_name):
                yield name, process, default_text(field)


# Heading and one-line introduction of each scope's table.
_SCOPE_TITLES = {
    "stores": ("Stores", "Where state is kept (`meshkit/config/stores.py`)."),
    "tokens": ("Access tokens", "How every process verifies access tokens (`meshkit/config/tokens.py`)."),
    "peers": (
        "Peers",
        "Where the backends listen, for the processes that call them (`meshkit/config/peers.py`).",
    ),
    "events": ("Events", "Kafka, the outbox and the event consumers (`meshkit/config/events.py`)."),
    "serve": (
        "Serving gRPC",
        "Where each backend listens, its TLS files, health checks and shutdown (`meshkit/config/serve.py`).",
    ),
    "telemetry": (
        "Telemetry",
        "Traces and logs, the same for every process (`meshkit/config/telemetry.py`).",
    ),
    "gateway": ("Gateway", "The gateway's own settings (`gateway/config.py`)."),
    "users": ("Users backend", "The users backend's own settings (`backends/users/config.py`)."),
    "auth": ("Auth backend", "The auth backend's own settings (`backends/auth/config.py`)."),
    "posts": ("Posts backend", "The posts backend's own settings (`backends/posts/config.py`)."),
    "broker": ("Broker backend", "The broker backend's own settings (`backends/broker/config.py`)."),
}

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


def markdown(found: Iterator[Row] | None = None) -> str:
    """The configuration reference: one table per scope."""
    by_scope: dict[str, list[Row]] = {}
    for row in found if found is not None else rows():
        by_scope.setdefault(row.scope, []).append(row)
    parts = [_PREAMBLE]
    for scope in SCOPES:
        if scope not in by_scope:
            continue
        title, intro = _SCOPE_TITLES[scope]
        parts.append(f"\n## {title}\n\n{intro}\n\n")
        parts.append("| variable | type | default | read by | description |\n|---|---|---|---|---|\n")
        for row in by_scope[scope]:
            name = f"`{row.name}`" + "".join(f" (or `{old}`)" for old in row.fallbacks)
            parts.append(
                f"| {name} | `{_cell(row.type)}` | {_cell(row.default)} | {', '.join(row.read_by)} "
                f"| {_cell(row.description)} |\n"
            )
    return "".join(parts)
