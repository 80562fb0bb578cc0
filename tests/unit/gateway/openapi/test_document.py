"""/openapi.json from the real contract (stubs/portico.binpb) and from a synthetic service using every
proto3 JSON feature; the document is valid OpenAPI 3.1, and real gateway answers match its schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.descriptor import ServiceDescriptor
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from gateway.config import GatewaySettings
from gateway.errors import http_exception_handler
from gateway.openapi.comments import load_comments
from gateway.openapi.document import build_document
from gateway.openapi.endpoints import OpenApiDocs
from gateway.request_edge import RequestEdgeMiddleware
from gateway.routing.live import DESCRIPTOR_SET, LiveRoutes
from gateway.routing.sources import load_descriptor_set, services_from_files
from gateway.routing.table import RouteTable, build_table
from gateway.transcode.request import build_request
from gateway.transcode.response import json_reply
from stubs.auth.v1 import auth_pb2
from stubs.portico.gateway.v1 import options_pb2
from stubs.users.v1 import users_pb2

Document = dict[str, Any]
F = descriptor_pb2.FieldDescriptorProto


def _table(services: list[ServiceDescriptor]) -> RouteTable:
    built = build_table(services, version=3)
    assert built.problems == ()
    assert built.table is not None
    return built.table


@pytest.fixture(scope="module")
def doc() -> Document:
    table = _table(load_descriptor_set(DESCRIPTOR_SET))
    return build_document(table, load_comments(DESCRIPTOR_SET), version="1.2.3", source="descriptor set")


def operation(doc: Document, method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["paths"][path][method]
    return found


def validator(doc: Document, schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A validator of `schema` whose $refs resolve into the document's components."""
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


def assert_valid_openapi(doc: Document) -> None:
    errors = [str(e) for e in jsonschema_rs.Draft202012Validator(OPENAPI_31).iter_errors(doc)]
    assert errors == []
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # JSON Schema 2020-12, the dialect of OAS 3.1
    schemathesis.openapi.from_dict(doc).validate()
    json.dumps(doc, allow_nan=False)  # plain JSON, no NaN


def test_the_document_is_valid_openapi_31(doc: Document) -> None:
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == "1.2.3"
    assert_valid_openapi(doc)


def test_every_route_is_an_operation_with_a_unique_id(doc: Document) -> None:
    table = _table(load_descriptor_set(DESCRIPTOR_SET))
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    documented = [route for route in table.routes if not route.dialect]
    assert len(ids) == len(documented) == len(set(ids))
    assert operation(doc, "put", "/api/v1/users/{user_id}")["operationId"] == "UserService_UpdateUser"
    assert operation(doc, "patch", "/api/v1/users/{user_id}")["operationId"] == "UserService_UpdateUser_2"
    assert {t["name"] for t in doc["tags"]} == {"UserService", "AuthService", "PostService", "MessageService"}


def test_the_seeds_dialect_paths_are_served_but_not_documented(doc: Document) -> None:
    """The document describes Portico's own API; docs/api.md lists the dialect paths and their shapes."""
    dialects = {r.template for r in _table(load_descriptor_set(DESCRIPTOR_SET)).routes if r.dialect}
    assert {"/user/register", "/user/login", "/user/login/refresh", "/user/me"} <= dialects
    assert not dialects & set(doc["paths"])
    assert operation(doc, "post", "/api/v1/auth/login")["operationId"] == "AuthService_Login"


def test_summaries_and_descriptions_come_from_proto_comments(doc: Document) -> None:
    get_user = operation(doc, "get", "/api/v1/users/{user_id}")
    assert get_user["summary"] == "Returns one user of the caller's tenant"
    assert "INVALID_ARGUMENT for a malformed id" in get_user["description"]
    user = doc["components"]["schemas"]["users.v1.User"]
    assert user["description"] == "A user profile as the REST API shows it."
    assert user["properties"]["phone"]["description"].startswith("Phone number in E.164 format")


def test_security_follows_the_route_policy(doc: Document) -> None:
    assert operation(doc, "post", "/api/v1/auth/login")["security"] == []
    assert operation(doc, "get", "/.well-known/jwks.json")["security"] == []
    me = operation(doc, "get", "/api/v1/users/me")
    assert me["security"] == [{"bearerAuth": []}]
    assert "403" in me["responses"]
    assert "X-Tenant-ID" in [p["name"] for p in me["parameters"]]
    assert "Requires one of the roles `admin`" in operation(doc, "post", "/api/v1/users")["description"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"


def test_path_and_query_parameters(doc: Document) -> None:
    get_user = {p["name"]: p for p in operation(doc, "get", "/api/v1/users/{user_id}")["parameters"]}
    assert get_user["user_id"]["in"] == "path"
    assert get_user["user_id"]["required"] is True
    assert get_user["tenant_id"]["in"] == "query"  # free: neither path nor body binds it
    listing = {p["name"]: p for p in operation(doc, "get", "/api/v1/users")["parameters"]}
    page_size = listing["page_size"]
    assert page_size["required"] is False
    # Typed as int32, narrowed by the field's rules where it has some (test_constraints.py).
    assert (page_size["schema"]["type"], page_size["schema"]["format"]) == ("integer", "int32")
    assert -(2**31) <= page_size["schema"]["minimum"] <= page_size["schema"]["maximum"] <= 2**31 - 1
    assert page_size["description"].startswith("Page size")
    subscribe = {p["name"] for p in operation(doc, "get", "/api/v1/topics/{topic}/messages")["parameters"]}
    assert {"topic", "from"} <= subscribe
    # body "*": nothing is left for the query string
    assert all(p["in"] != "query" for p in operation(doc, "post", "/api/v1/users")["parameters"])


def test_request_body_leaves_out_path_fields(doc: Document) -> None:
    update = operation(doc, "patch", "/api/v1/users/{user_id}")["requestBody"]
    schema = update["content"]["application/json"]["schema"]
    assert "user_id" not in schema["properties"]
    assert "username" in schema["properties"]
    assert schema["additionalProperties"] is False
    check = validator(doc, schema)
    assert check.is_valid({"first_name": "Ada", "is_active": None, "roles": ["admin"]})
    assert not check.is_valid({"first_name": 5})
    assert not check.is_valid({"nickname": "x"})
    # What the schema accepts, the transcoder binds.
    build_request(
        users_pb2.UpdateUserRequest, body_rule="*", body=b'{"first_name": "Ada", "roles": ["admin"]}'
    )


def test_uploads_take_json_or_multipart(doc: Document) -> None:
    create = operation(doc, "post", "/api/v1/posts")
    content = create["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data", "application/x-www-form-urlencoded"}
    multipart = content["multipart/form-data"]
    image = multipart["schema"]["properties"]["image"]
    assert image["format"] == "binary"
    assert image["contentMediaType"] == "image/*"
    assert "5242880 bytes" in image["description"]
    assert multipart["encoding"]["image"]["contentType"] == "image/png, image/jpeg, image/gif, image/webp"
    assert "image_content_type" not in multipart["schema"]["properties"]
    assert {"title", "content"} <= set(multipart["schema"]["properties"])
    assert multipart["schema"]["additionalProperties"] is False  # unknown parts are a 400
    assert {"413", "415"} <= set(create["responses"])
    form = content["application/x-www-form-urlencoded"]["schema"]
    assert set(form["properties"]) == {"title", "content"}  # the text fields, no file
    assert form["required"] == ["title"]


def test_whole_body_routes_take_a_form_and_credential_routes_an_oauth_token_request(doc: Document) -> None:
    login = operation(doc, "post", "/api/v1/auth/login")["requestBody"]["content"]
    form = login["application/x-www-form-urlencoded"]["schema"]
    assert {"username", "password", "grant_type", "scope", "client_id", "client_secret"} <= set(
        form["properties"]
    )
    assert form["properties"]["grant_type"]["enum"] == ["password", "refresh_token"]
    register = operation(doc, "post", "/api/v1/auth/register")["requestBody"]["content"]
    assert "grant_type" not in register["application/x-www-form-urlencoded"]["schema"]["properties"]


def test_success_status_envelope_and_raw_documents(doc: Document) -> None:
    created = operation(doc, "post", "/api/v1/users")["responses"]["201"]
    envelope = created["content"]["application/json"]["schema"]
    assert envelope["required"] == ["data"]
    assert envelope["properties"]["data"] == {"$ref": "#/components/schemas/users.v1.User"}
    assert "X-RateLimit-Remaining" in created["headers"]
    jwks = operation(doc, "get", "/.well-known/jwks.json")["responses"]["200"]["content"]["application/json"]
    assert jwks["schema"] == {"$ref": "#/components/schemas/auth.v1.GetJwksResponse"}
    assert "202" in operation(doc, "post", "/api/v1/topics/{topic}/messages")["responses"]


def test_binary_and_streaming_responses(doc: Document) -> None:
    image = operation(doc, "get", "/api/v1/posts/{post_id}/image")
    ok = image["responses"]["200"]
    assert set(ok["content"]) == {"image/png", "image/jpeg", "image/gif", "image/webp"}
    assert {"ETag", "Cache-Control"} <= set(ok["headers"])
    assert "304" in image["responses"]
    assert "If-None-Match" in [p["name"] for p in image["parameters"]]
    stream = operation(doc, "get", "/api/v1/topics/{topic}/messages")["responses"]["200"]
    assert set(stream["content"]) == {"text/event-stream", "application/x-ndjson"}
    item = stream["content"]["text/event-stream"]["x-item-schema"]
    assert item == {"$ref": "#/components/schemas/broker.v1.SubscribeToTopicResponse"}
    assert "`id:` = its `cursor`" in stream["description"]
    resume = operation(doc, "get", "/api/v1/topics/{topic}/messages")["parameters"]
    assert {"Last-Event-ID": "header", "from": "query"}.items() <= {
        p["name"]: p["in"] for p in resume
    }.items()


def test_errors_use_the_envelope(doc: Document) -> None:
    get_user = operation(doc, "get", "/api/v1/users/{user_id}")["responses"]
    assert get_user["404"] == {"$ref": "#/components/responses/NotFound"}
    too_many = doc["components"]["responses"]["TooManyRequests"]
    assert "Retry-After" in too_many["headers"]
    envelope = validator(doc, too_many["content"]["application/json"]["schema"])
    assert envelope.is_valid(
        {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "m", "status_code": 429, "request_id": "r"}}
    )
    assert not envelope.is_valid({"detail": "Not Found"})


def test_real_answers_conform_to_the_response_schemas(doc: Document) -> None:
    user = users_pb2.User(id="u1", tenant_id="t", username="ada", roles=["user"], is_active=True)
    user.created_at.FromSeconds(1_700_000_000)
    answer = json_reply(users_pb2.GetUserResponse(user=user), response_body="user")
    ok = operation(doc, "get", "/api/v1/users/{user_id}")["responses"]["200"]["content"]["application/json"]
    check = validator(doc, ok["schema"])
    assert check.is_valid(answer.body)  # updated_at unset: null
    assert not check.is_valid({"data": {**answer.body["data"], "created_at": 5}})
    assert not check.is_valid({"data": {"id": "u1"}})  # fields without presence are always there
    # The raw JWKS: optional `y` is left out, not null.
    jwks = auth_pb2.GetJwksResponse(
        keys=[auth_pb2.Jwk(kty="OKP", crv="Ed25519", x="abc", kid="k", alg="EdDSA")]
    )
    raw = json_reply(jwks, shape=options_pb2.ResponseShape(omit_envelope=True))
    schema = operation(doc, "get", "/.well-known/jwks.json")["responses"]["200"]["content"][
        "application/json"
    ]
    assert validator(doc, schema["schema"]).is_valid(raw.body)


def test_a_route_that_picks_members_documents_only_those(doc: Document) -> None:
    # Login's gRPC answer also has seed 000's `token` and `status`; REST answers only its members.
    login = operation(doc, "post", "/api/v1/auth/login")["responses"]["200"]["content"]["application/json"]
    data = login["schema"]["properties"]["data"]
    keys = ["access_token", "refresh_token", "token_type", "expires_in", "password_change_required"]
    assert list(data["properties"]) == keys
    assert data["required"] == keys
    fields: dict[str, Any] = {"access_token": "a", "refresh_token": "r", "token_type": "bearer"}
    reply = auth_pb2.LoginResponse(**fields, expires_in=900, token="a", status="ok")  # noqa: S106
    route = next(
        r for r in _table(load_descriptor_set(DESCRIPTOR_SET)).routes if r.template == "/api/v1/auth/login"
    )
    answer = json_reply(reply, shape=route.policy.response)
    assert list(answer.body["data"]) == keys
    assert validator(doc, login["schema"]).is_valid(answer.body)


# A synthetic service with what the real contract does not use yet.
def _library_files() -> list[descriptor_pb2.FileDescriptorProto]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="library/v1/library.proto",
        package="library.v1",
        syntax="proto3",
        dependency=[
            "google/api/annotations.proto",
            "google/protobuf/wrappers.proto",
            "google/protobuf/struct.proto",
            "google/protobuf/timestamp.proto",
        ],
    )
    color = proto.enum_type.add(name="Color")
    color.value.add(name="COLOR_UNSPECIFIED", number=0)
    color.value.add(name="COLOR_RED", number=1)
    shelf = proto.message_type.add(name="Shelf")
    shelf.field.add(name="name", number=1, type=F.TYPE_STRING)
    shelf.field.add(name="parent", number=2, type=F.TYPE_MESSAGE, type_name=".library.v1.Shelf")
    book = proto.message_type.add(name="Book")
    book.field.add(name="shelf", number=1, type=F.TYPE_MESSAGE, type_name=".library.v1.Shelf")
    book.field.add(name="pages", number=2, type=F.TYPE_INT64)
    book.field.add(name="color", number=3, type=F.TYPE_ENUM, type_name=".library.v1.Color")
    book.field.add(name="cover", number=4, type=F.TYPE_BYTES)
    book.field.add(name="rating", number=5, type=F.TYPE_MESSAGE, type_name=".google.protobuf.DoubleValue")
    book.field.add(name="extra", number=6, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Struct")
    book.field.add(name="tags", number=7, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    book.field.add(name="isbn", number=8, type=F.TYPE_STRING, oneof_index=0)
    book.field.add(name="issn", number=9, type=F.TYPE_STRING, oneof_index=0)
    book.oneof_decl.add(name="id")
    book.field.add(
        name="counts",
        number=10,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".library.v1.Book.CountsEntry",
    )
    entry = book.nested_type.add(name="CountsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_INT32)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=".library.v1.Shelf")
    book.field.add(name="published", number=11, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp")
    service = proto.service.add(name="Library")
    get = service.method.add(name="GetBook", input_type=".library.v1.Book", output_type=".library.v1.Book")
    get.options.Extensions[annotations_pb2.http].get = "/v1/{shelf.name=shelves/*}/books/**:read"
    put = service.method.add(name="PutBook", input_type=".library.v1.Book", output_type=".library.v1.Book")
    put.options.Extensions[annotations_pb2.http].put = "/v1/books/{isbn}"
    put.options.Extensions[annotations_pb2.http].body = "shelf"
    contract = list(descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file)
    wkts = [
        descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        for module in (wrappers_pb2, struct_pb2)
    ]
    assert timestamp_pb2.DESCRIPTOR.name in {f.name for f in contract}
    return [*contract, *wkts, proto]


@pytest.fixture(scope="module")
def library() -> Document:
    services = [s for s in services_from_files(_library_files()) if s.full_name == "library.v1.Library"]
    return build_document(_table(services), {}, version="0")


def test_synthetic_service_is_valid_openapi(library: Document) -> None:
    assert_valid_openapi(library)


def test_templates_with_nested_fields_wildcards_and_verbs(library: Document) -> None:
    path = "/v1/{shelf.name}/books/{wildcard1}:read"
    params = {p["name"]: p for p in library["paths"][path]["get"]["parameters"]}
    assert "may contain `/`" in params["shelf.name"]["description"]
    assert params["wildcard1"]["in"] == "path"
    # Query: every free leaf, dotted and typed; the recursive Shelf is walked, maps/Struct are not.
    assert params["pages"]["schema"] == {"type": "integer", "format": "int64"}
    assert params["color"]["schema"] == {"type": "string", "enum": ["COLOR_UNSPECIFIED", "COLOR_RED"]}
    assert params["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params["published"]["schema"]["format"] == "date-time"
    assert params["rating"]["schema"]["anyOf"][0]["type"] == "number"
    assert "shelf.parent.name" in params
    assert "shelf.name" in params
    assert not {"extra", "counts"} & set(params)
    put = library["paths"]["/v1/books/{isbn}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0] == {
        "$ref": "#/components/schemas/library.v1.Shelf.Input"
    }
    assert "shelf" not in {p["name"].partition(".")[0] for p in put["parameters"] if p["in"] == "query"}


def test_proto3_json_mapping(library: Document) -> None:
    book = library["components"]["schemas"]["library.v1.Book"]
    props = book["properties"]
    assert props["pages"] == {"type": "string", "pattern": "^-?[0-9]+$", "format": "int64"}
    assert props["cover"] == {"type": "string", "contentEncoding": "base64"}
    assert props["extra"] == {"type": ["object", "null"]}
    assert props["counts"]["additionalProperties"] == {"$ref": "#/components/schemas/library.v1.Shelf"}
    assert props["counts"]["propertyNames"] == {"pattern": "^-?[0-9]+$"}
    assert "at most one of `isbn`, `issn`" in book["description"]
    assert "isbn" not in book["required"]
    assert "pages" in book["required"]
    # A message both read and written: its input twin refuses unknown keys and accepts null.
    shelf_in = library["components"]["schemas"]["library.v1.Shelf.Input"]
    assert shelf_in["additionalProperties"] is False
    assert shelf_in["properties"]["name"]["type"] == ["string", "null"]


@asynccontextmanager
async def _state(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"routes": LiveRoutes({})}


@pytest.fixture
def client() -> Iterator[TestClient]:
    docs = OpenApiDocs(GatewaySettings().docs_assets_dir)
    app = Starlette(
        routes=docs.routes(),
        lifespan=_state,
        middleware=[Middleware(RequestEdgeMiddleware)],
        exception_handlers={HTTPException: http_exception_handler},  # as the gateway app has
    )
    with TestClient(app) as http:
        yield http


def test_openapi_endpoint_is_cached_per_table(client: TestClient) -> None:
    first = client.get("/openapi.json")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json()["paths"]["/api/v1/users/me"]["get"]["operationId"] == "UserService_GetMe"
    assert client.get("/openapi.json").content == first.content
    live: LiveRoutes = client.app_state["routes"]
    services = [s for s in services_from_files(_library_files()) if s.full_name == "library.v1.Library"]
    live.table = _table([*load_descriptor_set(DESCRIPTOR_SET), *services])  # what a refresh does
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/books/{isbn}" in paths
    assert "/api/v1/users/me" in paths


def test_docs_page_and_its_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "//" not in page.text.replace("<!doctype", "")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "javascript" in bundle.headers["content-type"]
    init = client.get("/docs/assets/portico-init.js")
    assert '"/openapi.json"' in init.text
    assert "validatorUrl: null" in init.text


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/package.json",  # exists, but not a file the page needs
        "/docs/assets/..%2F..%2Fpyproject.toml",
        "/docs/assets/%2e%2e",
        "/docs/assets/../../gateway/app.py",
        "/docs/assets/swagger-ui.css/../../../README.md",
    ],
)
def test_assets_refuse_every_other_file(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_missing_assets_directory_is_a_404(tmp_path: Path) -> None:
    docs = OpenApiDocs(tmp_path / "absent")
    app = Starlette(routes=docs.routes(), lifespan=_state)
    with TestClient(app) as http:
        assert http.get("/docs/assets/swagger-ui.css").status_code == 404


def _errors(doc: Document, method: str, path: str) -> set[int]:
    return {int(s) for s in operation(doc, method, path)["responses"] if int(s) >= 400}


def test_each_operation_lists_only_the_errors_it_can_answer(doc: Document) -> None:
    everywhere = {429, 500, 503}
    body = {400, 413, 415}
    token = {401, 403}
    assert _errors(doc, "get", "/.well-known/jwks.json") == everywhere | {504}  # no input, public
    assert _errors(doc, "get", "/api/v1/users/me") == everywhere | token | {504}
    assert _errors(doc, "post", "/api/v1/auth/register") == everywhere | body | {409, 504}
    assert _errors(doc, "post", "/api/v1/auth/login") == everywhere | body | {401, 504}  # credentials
    assert _errors(doc, "post", "/api/v1/users") == everywhere | body | token | {409, 504}
    assert _errors(doc, "get", "/api/v1/users") == everywhere | token | {400, 504}  # query only
    assert _errors(doc, "get", "/api/v1/users/{user_id}") == everywhere | token | {400, 404, 504}
    assert 409 in _errors(doc, "patch", "/api/v1/users/{user_id}")
    assert 409 not in _errors(doc, "put", "/api/v1/posts/{post_id}")
    # A stream: 406 when neither SSE nor NDJSON is acceptable; no deadline, so no 504.
    assert _errors(doc, "get", "/api/v1/topics/{topic}/messages") == everywhere | token | {400, 404, 406}
    statuses = {s for item in doc["paths"].values() for op in item.values() for s in op["responses"]}
    assert "501" not in statuses
    assert "NotImplemented" not in doc["components"]["responses"]  # only the responses in use
    assert "NotAcceptable" in doc["components"]["responses"]


def test_unique_fields_name_request_fields() -> None:
    """A typo in the policy cannot document a 409 for a field the request does not have."""
    for route in _table(load_descriptor_set(DESCRIPTOR_SET)).routes:
        assert set(route.policy.unique_fields) <= set(route.input.fields_by_name), route.grpc_method


def test_unique_fields_are_described(doc: Document) -> None:
    register = operation(doc, "post", "/api/v1/auth/register")["description"]
    assert "`username` and `email` must be unique in the tenant (409 when taken)." in register


def test_request_bodies_are_required(doc: Document) -> None:
    bodies = [
        op["requestBody"] for item in doc["paths"].values() for op in item.values() if "requestBody" in op
    ]
    assert len(bodies) >= 8
    assert all(body["required"] is True for body in bodies)


def _examples(doc: Document) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) of every example the document carries."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            label = f"{method.upper()} {path}"
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                if media == "application/json":
                    yield f"{label} request", content["schema"], content.get("example")
            for status, answer in op["responses"].items():
                if not status.startswith("2"):
                    continue
                for media, content in answer.get("content", {}).items():
                    if media == "application/json":
                        yield f"{label} {status}", content["schema"], content.get("example")
                    elif "x-item-schema" in content:
                        line = content.get("example", "").strip().splitlines()
                        if media == "text/event-stream" and line:
                            assert line[0].startswith("id: "), label
                        item = json.loads(line[-1].removeprefix("data: ")) if line else None
                        yield f"{label} {status} {media}", content["x-item-schema"], item


def test_every_operation_has_examples_that_match_their_schemas(doc: Document) -> None:
    covered: set[str] = set()
    for where, schema, example in _examples(doc):
        assert example is not None, f"{where}: no example"
        check = jsonschema_rs.validator_for(
            {**schema, "components": doc["components"]}, validate_formats=True
        )
        errors = [str(e) for e in check.iter_errors(example)]
        assert errors == [], f"{where}: {errors}"
        covered.add(where)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            label = f"{method.upper()} {path}"
            if "requestBody" in op:
                assert f"{label} request" in covered
            if path != "/api/v1/posts/{post_id}/image":  # the image's bytes have no JSON example
                assert any(w.startswith(f"{label} 2") for w in covered), label


def test_an_example_that_is_not_json_is_left_out(doc: Document) -> None:
    table = _table(load_descriptor_set(DESCRIPTOR_SET))
    for route in table.routes:
        if route.grpc_method.endswith("/Login"):
            route.policy.example.response = "{not json"
    broken = build_document(table, {}, version="0")
    login = operation(broken, "post", "/api/v1/auth/login")
    assert "example" not in login["responses"]["200"]["content"]["application/json"]
    assert "example" in login["requestBody"]["content"]["application/json"]
