"""protovalidate rules → JSON Schema: the mapper on rules built in Python, and on a small service
whose descriptors the gateway resolves in its own pool; what the schema accepts, protovalidate
accepts too (checked on the same bodies)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jsonschema_rs
import protovalidate
import pytest
from google.api import annotations_pb2
from google.protobuf import (
    descriptor_pb2,
    duration_pb2,
    field_mask_pb2,
    message_factory,
    timestamp_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.openapi.constraints import (
    accepts,
    field_rules,
    merge,
    single_schema,
)
from gateway.openapi.document import build_document
from gateway.routing.live import DESCRIPTOR_SET
from gateway.routing.sources import services_from_files
from gateway.routing.table import build_table
from gateway.transcode.errors import TranscodeError
from gateway.transcode.request import build_request
from stubs.buf.validate import validate_pb2 as v
from tests.unit.gateway.openapi.test_document import assert_valid_openapi

F = descriptor_pb2.FieldDescriptorProto
Document = dict[str, Any]


def _string_field() -> FieldDescriptor:
    """A string field: the scalar rules below read only their own kind, not the field's type."""
    field: FieldDescriptor = descriptor_pb2.FileDescriptorProto.DESCRIPTOR.fields_by_name["name"]
    return field


def rules(**kind: Any) -> v.FieldRules:
    built = v.FieldRules()
    for name, value in kind.items():
        getattr(built, name).CopyFrom(value)
    return built


def test_string_rules_become_keywords() -> None:
    field = _string_field()
    keywords = single_schema(
        rules(string=v.StringRules(min_len=3, max_len=32, pattern="^[a-z]+$", prefix="a.b", suffix="z")),
        field,
    )
    assert keywords["minLength"] == 3
    assert keywords["maxLength"] == 32
    assert keywords["pattern"] == "^[a-z]+$"
    assert keywords["allOf"] == [{"pattern": r"^a\.b"}, {"pattern": "z$"}]
    assert single_schema(rules(string=v.StringRules(len=4)), field) == {"minLength": 4, "maxLength": 4}
    assert single_schema(rules(string=v.StringRules(email=True, max_len=255)), field) == {
        "maxLength": 255,
        "format": "email",
    }
    for name, form in (("uuid", "uuid"), ("uri", "uri"), ("hostname", "hostname"), ("ipv4", "ipv4")):
        assert single_schema(rules(string=v.StringRules(**{name: True})), field) == {"format": form}
    assert single_schema(rules(string=v.StringRules(ip=True)), field) == {
        "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]
    }
    chosen = v.StringRules(not_contains="@")
    getattr(chosen, "in").extend(["a", "b"])
    chosen.not_in.append("c")
    assert single_schema(rules(string=chosen), field) == {
        "enum": ["a", "b"],
        "not": {"anyOf": [{"pattern": "@"}, {"enum": ["c"]}]},
    }
    # A byte bound is a looser character bound.
    assert single_schema(rules(string=v.StringRules(max_bytes=40, min_bytes=5)), field) == {
        "maxLength": 40,
        "minLength": 2,
    }


def test_numeric_rules_become_ranges() -> None:
    field = _string_field()
    assert single_schema(rules(int32=v.Int32Rules(gte=1, lte=100)), field) == {"minimum": 1, "maximum": 100}
    assert single_schema(rules(uint64=v.UInt64Rules(gt=0, lt=10)), field) == {
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 10,
    }
    # protovalidate's exclusive range: outside [5, 10].
    assert single_schema(rules(int32=v.Int32Rules(gt=10, lt=5)), field) == {
        "anyOf": [{"exclusiveMinimum": 10}, {"exclusiveMaximum": 5}]
    }
    listed = v.Int32Rules(const=7)
    getattr(listed, "in").extend([7, 8])
    listed.not_in.append(9)
    assert single_schema(rules(int32=listed), field) == {"const": 7, "enum": [7, 8], "not": {"enum": [9]}}
    assert single_schema(rules(double=v.DoubleRules(gte=0.5)), field) == {"minimum": 0.5}


def test_merge_narrows_the_numeric_branch() -> None:
    int32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
    assert merge(int32, {"minimum": 1, "maximum": 100}) == {
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": 100,
    }
    int64 = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]+$"}]}
    assert merge(int64, {"minimum": 1})["anyOf"][0] == {"type": "integer", "minimum": 1}
    double = {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN"]}]}
    assert merge(double, {"minimum": 0}) == {"type": "number", "minimum": 0}  # bounds refuse NaN
    assert merge({"$ref": "#/x"}, {"minLength": 1}) == {"allOf": [{"$ref": "#/x"}, {"minLength": 1}]}
    assert merge({"type": "string"}, {}) == {"type": "string"}


def test_zero_values_against_keywords() -> None:
    assert not accepts({"minLength": 1}, "")
    assert not accepts({"format": "email"}, "")
    assert not accepts({"pattern": "^[a-z]+$"}, "")
    assert accepts({"pattern": "^[a-z]*$"}, "")
    assert accepts({"pattern": "(?i)x*"}, "")  # a construct ECMA lacks: Python reads it
    assert not accepts({"enum": ["a"]}, "")
    assert not accepts({"minimum": 1}, 0)
    assert accepts({"minimum": 0, "maximum": 150}, 0)
    assert not accepts({"exclusiveMinimum": 0}, 0)
    assert not accepts({"not": {"enum": [0]}}, 0)
    assert not accepts({"minItems": 1}, [])
    assert accepts({"anyOf": [{"minimum": 5}, {"maximum": 1}]}, 0)


# A small service with rules, resolved the way the gateway resolves a descriptor set or reflection.
def _rules_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="things/v1/things.proto",
        package="things.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto", "buf/validate/validate.proto"],
    )
    color = proto.enum_type.add(name="Color")
    for number, name in enumerate(("COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_BLUE")):
        color.value.add(name=name, number=number)
    thing = proto.message_type.add(name="Thing")
    oneofs = 0

    def add(name: str, kind: int, **extra: Any) -> F:
        nonlocal oneofs
        optional = extra.pop("optional", False)
        field = thing.field.add(name=name, number=len(thing.field) + 1, type=kind, **extra)
        if optional:
            field.proto3_optional = True
            field.oneof_index = oneofs
            oneofs += 1
            thing.oneof_decl.add(name=f"_{name}")
        return field

    def rule(field: F) -> v.FieldRules:
        field_rules: v.FieldRules = field.options.Extensions[v.field]
        return field_rules

    rule(add("name", F.TYPE_STRING)).string.MergeFrom(
        v.StringRules(min_len=1, max_len=100, pattern="^[A-Za-z ]+$")
    )
    rule(add("email", F.TYPE_STRING)).string.MergeFrom(v.StringRules(email=True, max_len=255))
    tenant = rule(add("tenant_id", F.TYPE_STRING))
    tenant.ignore = v.IGNORE_IF_ZERO_VALUE
    tenant.string.pattern = "^[a-z]{1,5}$"
    rule(add("nickname", F.TYPE_STRING, optional=True)).string.min_len = 3
    getattr(rule(add("kind", F.TYPE_STRING)).string, "in").extend(["a", "b"])
    rule(add("age", F.TYPE_INT32)).int32.MergeFrom(v.Int32Rules(gte=0, lte=150))
    rule(add("score", F.TYPE_INT32)).int32.gt = 0
    rule(add("page", F.TYPE_INT32, optional=True)).int32.gte = 1
    tags = rule(add("tags", F.TYPE_STRING, label=F.LABEL_REPEATED)).repeated
    tags.MergeFrom(v.RepeatedRules(min_items=1, max_items=3, unique=True))
    tags.items.string.max_len = 10
    shade = rule(add("color", F.TYPE_ENUM, type_name=".things.v1.Color")).enum
    shade.defined_only = True
    shade.not_in.append(0)
    rule(add("id", F.TYPE_STRING)).string.uuid = True
    always = rule(add("label", F.TYPE_STRING))
    always.ignore = v.IGNORE_ALWAYS
    always.string.min_len = 5
    rule(add("must", F.TYPE_BOOL, optional=True)).required = True
    rule(add("even", F.TYPE_INT32)).cel.add(id="even", message="must be even", expression="this % 2 == 0")
    add("free", F.TYPE_STRING)
    # Message-level rules: one of username/email (never both), a required real oneof, a CEL rule.
    login = proto.message_type.add(name="Login")
    login.field.add(name="username", number=1, type=F.TYPE_STRING)
    login.field[0].options.Extensions[v.field].string.pattern = "^[a-z]{3,8}$"
    login.field.add(name="email", number=2, type=F.TYPE_STRING)
    login.field[1].options.Extensions[v.field].string.email = True
    login.field.add(name="code", number=3, type=F.TYPE_STRING, oneof_index=0)
    login.field.add(name="otp", number=4, type=F.TYPE_INT32, oneof_index=0)
    login.oneof_decl.add(name="second").options.Extensions[v.oneof].required = True
    login_rules = login.options.Extensions[v.message]
    login_rules.oneof.add(fields=["username", "email"], required=True)
    login_rules.cel.add(
        id="no_admin", message="admin may not log in here", expression="this.username != 'admin'"
    )
    service = proto.service.add(name="Things")
    create = service.method.add(name="Create", input_type=".things.v1.Thing", output_type=".things.v1.Thing")
    create.options.Extensions[annotations_pb2.http].post = "/v1/things"
    create.options.Extensions[annotations_pb2.http].body = "*"
    find = service.method.add(name="Find", input_type=".things.v1.Thing", output_type=".things.v1.Thing")
    find.options.Extensions[annotations_pb2.http].get = "/v1/things/{id}"
    enter = service.method.add(name="Enter", input_type=".things.v1.Login", output_type=".things.v1.Thing")
    enter.options.Extensions[annotations_pb2.http].post = "/v1/login"
    enter.options.Extensions[annotations_pb2.http].body = "*"
    return proto


def _files() -> list[descriptor_pb2.FileDescriptorProto]:
    contract = list(descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file)
    known = {f.name for f in contract}
    extra = [
        descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        for module in (duration_pb2, field_mask_pb2, timestamp_pb2, v)
    ]
    return [*contract, *(f for f in extra if f.name not in known), _rules_file()]


@pytest.fixture(scope="module")
def thing() -> Descriptor:
    services = [s for s in services_from_files(_files()) if s.full_name == "things.v1.Things"]
    return services[0].methods_by_name["Create"].input_type


@pytest.fixture(scope="module")
def things_doc() -> Document:
    services = [s for s in services_from_files(_files()) if s.full_name == "things.v1.Things"]
    built = build_table(services, version=1)
    assert built.table is not None, built.problems
    return build_document(built.table, {}, version="0")


def body_schema(doc: Document) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"]["things.v1.Thing.Input"]
    return schema


def test_rules_are_read_from_descriptors_of_the_gateways_own_pool(thing: Descriptor) -> None:
    name = field_rules(thing.fields_by_name["name"])
    assert name is not None
    assert name.string.max_len == 100
    assert field_rules(thing.fields_by_name["free"]) is None


def test_rules_parsed_before_the_extension_was_known_are_read_again() -> None:
    """Options a pool parsed before `buf.validate` was imported keep the rules as unknown bytes."""
    script = (
        "import sys\n"
        "from google.protobuf import descriptor_pb2, descriptor_pool\n"
        "files = descriptor_pb2.FileDescriptorSet.FromString(sys.stdin.buffer.read()).file\n"
        "pool = descriptor_pool.DescriptorPool()\n"
        "[pool.Add(f) for f in files]\n"
        "field = pool.FindMessageTypeByName('things.v1.Thing').fields_by_name['score']\n"
        "field.GetOptions()  # parsed now, without the extension\n"
        "from gateway.openapi.constraints import field_rules, is_required\n"
        "print(field_rules(field).int32.gt, is_required(field, field_rules(field)))\n"
    )
    files = descriptor_pb2.FileDescriptorSet(file=_files())
    run = subprocess.run(
        [sys.executable, "-c", script],
        input=files.SerializeToString(),
        capture_output=True,
        check=True,
    )
    assert run.stdout.decode().split() == ["0", "True"]


def test_required_follows_presence_and_ignore(things_doc: Document) -> None:
    schema = body_schema(things_doc)
    assert schema["required"] == ["name", "email", "kind", "score", "tags", "color", "id", "must"]
    props = schema["properties"]
    assert props["name"] == {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z ]+$"}
    assert props["email"] == {"type": "string", "maxLength": 255, "format": "email"}
    assert props["id"]["format"] == "uuid"
    # Rules that apply only when set: the zero value or null stays allowed.
    assert props["tenant_id"]["anyOf"][0] == {"const": ""}
    assert props["nickname"] == {"type": ["string", "null"], "minLength": 3}
    assert props["page"]["minimum"] == 1
    assert props["page"]["type"] == ["integer", "null"]
    assert props["age"]["minimum"] == 0
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string", "maxLength": 10},
        "minItems": 1,
        "maxItems": 3,
        "uniqueItems": True,
    }
    assert props["color"]["enum"] == ["COLOR_RED", "COLOR_BLUE"]
    assert "minLength" not in props["label"]  # IGNORE_ALWAYS
    assert props["even"]["description"] == "Also: must be even"
    assert props["free"] == {"type": ["string", "null"]}


def test_query_path_and_body_requirements(things_doc: Document) -> None:
    create = things_doc["paths"]["/v1/things"]["post"]
    assert create["requestBody"]["required"] is True
    find = things_doc["paths"]["/v1/things/{id}"]["get"]
    params = {p["name"]: p for p in find["parameters"]}
    assert params["id"]["schema"]["format"] == "uuid"
    assert params["score"]["required"] is True
    assert params["score"]["schema"]["exclusiveMinimum"] == 0
    assert params["page"]["required"] is False
    assert params["page"]["schema"]["minimum"] == 1
    assert params["tags"]["schema"]["minItems"] == 1
    assert_valid_openapi(things_doc)


VALID = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "kind": "a",
    "score": 3,
    "tags": ["x"],
    "color": "COLOR_RED",
    "id": "8c5b2f8e-0f0e-4a8e-9d1a-3f3f3f3f3f3f",
    "must": False,
    "even": 2,
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"tenant_id": ""},
        {"tenant_id": "acme"},
        {"tenant_id": "ACME"},
        {"nickname": None},
        {"nickname": "al"},
        {"page": 0},
        {"page": 2},
        {"age": 151},
        {"age": 0},
        {"score": 0},
        {"name": ""},
        {"name": "R2D2"},
        {"email": "not-an-email"},
        {"kind": "c"},
        {"tags": []},
        {"tags": ["x", "x"]},
        {"tags": ["a", "b", "c", "d"]},
        {"tags": ["x" * 11]},
        {"color": "COLOR_UNSPECIFIED"},
        {"id": "nope"},
        {"must": None},
        {"label": "abc"},
    ],
)
def test_schema_and_protovalidate_agree(
    thing: Descriptor, things_doc: Document, change: dict[str, Any]
) -> None:
    body = {**VALID, **change}
    schema = {**body_schema(things_doc), "components": things_doc["components"]}
    by_schema = jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(body)
    message_class = message_factory.GetMessageClass(thing)
    try:
        message = build_request(message_class, body_rule="*", body=json.dumps(body).encode())
    except TranscodeError:
        pytest.fail(f"the transcoder refused {body}")
    violations = protovalidate.Validator().collect_violations(message)
    assert by_schema == (not violations), [str(v.proto) for v in violations]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ada", "code": "x"},
        {"email": "ada@example.com", "otp": 5},
        {"username": "ada", "email": "", "code": "x"},  # empty counts as not set
        {"username": "ada", "email": "ada@example.com", "code": "x"},  # both: refused
        {"code": "x"},  # neither: refused
        {"username": "ada"},  # the required real oneof unset: refused
        {"username": "ada", "code": ""},  # a oneof member set to its zero value is set
        {"username": "AD", "code": "x"},
        {"username": None, "email": "ada@example.com", "code": "x"},
    ],
)
def test_message_rules_agree_with_protovalidate(things_doc: Document, body: dict[str, Any]) -> None:
    schema = things_doc["components"]["schemas"]["things.v1.Login"]
    assert schema["description"].endswith("Also: admin may not log in here")
    assert "required" not in schema  # username and email: each one optional on its own
    services = [s for s in services_from_files(_files()) if s.full_name == "things.v1.Things"]
    login = services[0].methods_by_name["Enter"].input_type
    by_schema = jsonschema_rs.validator_for(
        {**schema, "components": things_doc["components"]}, validate_formats=True
    ).is_valid(body)
    message = build_request(
        message_factory.GetMessageClass(login), body_rule="*", body=json.dumps(body).encode()
    )
    violations = protovalidate.Validator().collect_violations(message)
    assert by_schema == (not violations), [str(v.proto) for v in violations]


def test_string_patterns_are_written_in_the_json_schema_dialect() -> None:
    assert single_schema(rules(string=v.StringRules(pattern=r"^[\t\P{Cc}]$")), _string_field()) == {
        "pattern": r"^[^\x00-\x08\x0A-\x1F\x7F-\x9F]$"
    }
