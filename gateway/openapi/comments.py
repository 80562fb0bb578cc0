"""Proto comments by element full name, read from a descriptor set's SourceCodeInfo.

Descriptors fetched by reflection (and the generated Python pool) carry no source info, so comments
come from the descriptor set `scripts/gen_protos.py` builds with `--include_source_info`. An element
the set does not know (e.g. an RPC a backend gained since) simply has no description.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

# Field numbers in descriptor.proto that SourceCodeInfo paths walk through.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

Comments = dict[str, str]


def load_comments(path: Path) -> Comments:
    """Full name (``users.v1.User.email``, ``users.v1.UserService.GetUser``) → cleaned comment."""
    if not path.is_file():
        return {}
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
    comments: Comments = {}
    for file in files:
        names = dict(_element_names(file))
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = clean(location.leading_comments or location.trailing_comments)
            if name is not None and text:
                comments[name] = text
    return comments


def clean(comment: str) -> str:
    """A comment as prose: the lines joined, paragraphs kept."""
    paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in comment.split("\n\n")]
    return "\n\n".join(p.strip() for p in paragraphs if p.strip())


def _element_names(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    prefix = f"{file.package}." if file.package else ""
    for i, message in enumerate(file.message_type):
        yield from _message_names(message, (_FILE_MESSAGE, i), prefix + message.name)
    for i, enum in enumerate(file.enum_type):
        yield from _enum_names(enum.value, (_FILE_ENUM, i), prefix + enum.name)
    for i, service in enumerate(file.service):
        name = prefix + service.name
        yield (_FILE_SERVICE, i), name
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, i, _SERVICE_METHOD, j), f"{name}.{method.name}"


def _message_names(
    message: descriptor_pb2.DescriptorProto, path: tuple[int, ...], name: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    for j, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELD, j), f"{name}.{field.name}"
    for j, nested in enumerate(message.nested_type):
        yield from _message_names(nested, (*path, _MESSAGE_NESTED, j), f"{name}.{nested.name}")
    for j, enum in enumerate(message.enum_type):
        yield from _enum_names(enum.value, (*path, _MESSAGE_ENUM, j), f"{name}.{enum.name}")


def _enum_names(
    values: Sequence[descriptor_pb2.EnumValueDescriptorProto], path: tuple[int, ...], name: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    # Enum values are scoped like C++: siblings of the enum, not children of it.
    scope = name.rpartition(".")[0]
    for j, value in enumerate(values):
        yield (*path, _ENUM_VALUE, j), f"{scope}.{value.name}" if scope else value.name
