"""The OpenAPI 3.1 document of a route table: one operation per Route, schemas from its descriptors.

Everything here is read from the table the gateway serves with (http rules, the route policy, the
request and response descriptors) and the proto comments, so the document can never describe a route
the gateway does not have, nor miss one it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.form import FORM, OAUTH_GRANTS, OAUTH_PARAMETERS
from gateway.openapi.comments import Comments
from gateway.openapi.constraints import message_keywords
from gateway.openapi.examples import enveloped, present, request_example, response_example, stream_examples
from gateway.openapi.parameters import path_parameters, query_parameters, ruled_text_schema
from gateway.openapi.responses import (
    ERROR_SCHEMA,
    RATE_LIMIT_HEADERS,
    error_responses,
    errors_for,
    headers_ref,
)
from gateway.openapi.schema import Direction, Schema, SchemaBuilder
from gateway.routing.rules import Route, routes_for_method
from gateway.routing.table import RouteTable
from gateway.streaming import RESUME_FIELD
from gateway.transcode.fields import is_repeated
from stubs.portico.gateway.v1 import options_pb2

OPENAPI_VERSION = "3.1.0"
_JSON = "application/json"
_BINARY: Schema = {"type": "string", "format": "binary"}


def build_document(
    table: RouteTable, comments: Comments, *, version: str, source: str = ""
) -> dict[str, Any]:
    """The whole document; deterministic for a given table."""
    # A seed's dialect path (`BindingPolicy.dialect`) is served but not described here: this is the
    # document of Portico's own API; docs/api.md lists the dialect paths and their shapes.
    routes = tuple(route for route in table.routes if not route.dialect)
    schemas = SchemaBuilder(comments, outputs=(route.output for route in routes))
    operation_ids = _operation_ids(routes)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    for route in routes:
        path, path_params = path_parameters(route, comments)
        operation = _operation(route, operation_ids[route], path_params, schemas, comments)
        paths.setdefault(path, {})[route.http_method.lower()] = operation
        tags[_tag(route)] = comments.get(route.backend, "")
    schemas.components["Error"] = ERROR_SCHEMA
    description = "Generated from the gateway's live route table and the services' descriptors."
    if source:
        description += f" Routes loaded from: {source} (table version {table.version})."
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Portico API", "version": version, "description": description},
        "tags": [
            {"name": name, **({"description": text} if text else {})} for name, text in sorted(tags.items())
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": error_responses(_used_responses(paths)),
            "headers": RATE_LIMIT_HEADERS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from /api/v1/auth/login, /register or /refresh.",
                }
            },
        },
    }


def _used_responses(paths: dict[str, dict[str, Any]]) -> set[str]:
    """The components/responses the operations refer to."""
    prefix = "#/components/responses/"
    return {
        answer["$ref"].removeprefix(prefix)
        for item in paths.values()
        for operation in item.values()
        for answer in operation["responses"].values()
        if answer.get("$ref", "").startswith(prefix)
    }


def _tag(route: Route) -> str:
    return route.backend.rpartition(".")[2]


def _operation_ids(routes: tuple[Route, ...]) -> dict[Route, str]:
    """``Service_Method`` for an RPC's own binding, ``Service_Method_<n>`` for additional binding n."""
    ids: dict[Route, str] = {}
    for route in routes:
        method = route.grpc_method.rpartition("/")[2]
        base = f"{_tag(route)}_{method}"
        index = _binding_index(route)
        ids[route] = base if index == 0 else f"{base}_{index + 1}"
    # Distinct RPCs of two services of the same short name could still collide: qualify those.
    counts: dict[str, int] = {}
    for operation_id in ids.values():
        counts[operation_id] = counts.get(operation_id, 0) + 1
    for route, operation_id in ids.items():
        if counts[operation_id] > 1:
            ids[route] = f"{route.backend.replace('.', '_')}_{operation_id.partition('_')[2]}"
    return ids


def _binding_index(route: Route) -> int:
    """0 for the rule itself, n for its n-th additional binding (rules.py keeps that order)."""
    service = route.input.file.pool.FindServiceByName(route.backend)
    method = service.methods_by_name[route.grpc_method.rpartition("/")[2]]
    for index, candidate in enumerate(routes_for_method(method)):
        if (candidate.http_method, candidate.template) == (route.http_method, route.template):
            return index
    return 0


def _operation(
    route: Route,
    operation_id: str,
    path_params: list[dict[str, Any]],
    schemas: SchemaBuilder,
    comments: Comments,
) -> dict[str, Any]:
    method_name = f"{route.backend}.{route.grpc_method.rpartition('/')[2]}"
    comment = comments.get(method_name, "")
    # The comment's first sentence is the summary; the whole comment the description.
    summary = comment.partition(". ")[0].rstrip(".") if comment else f"{route.http_method} {route.template}"
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [_tag(route)],
        "summary": summary,
        "description": "\n\n".join(part for part in (comment, f"gRPC: `{route.grpc_method}`") if part),
    }
    public = route.policy.access == options_pb2.ACCESS_PUBLIC
    queried = query_parameters(route, comments)
    parameters = [*path_params, *queried]
    if not public:
        parameters.append(
            {
                "name": "X-Tenant-ID",
                "in": "header",
                "required": False,
                "description": "When given, must equal the access token's `tenant_id` (else 403).",
                "schema": {"type": "string"},
            }
        )
    if route.policy.response.binary.etag_field:
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "The ETag of a held copy: 304 without a body when it still matches.",
                "schema": {"type": "string"},
            }
        )
    if route.server_streaming and RESUME_FIELD in route.input.fields_by_name:
        parameters.append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": f"An event's `id`: the stream continues right after it (as `{RESUME_FIELD}`).",
                "schema": {"type": "string"},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route, schemas)
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {
        str(_success_status(route)): _success(route, schemas),
        **({"304": _not_modified()} if route.policy.response.binary.etag_field else {}),
        **{
            str(status): {"$ref": f"#/components/responses/{name}"}
            for status, name in errors_for(route, has_input=bool(path_params or body or queried))
        },
    }
    operation["security"] = [] if public else [{"bearerAuth": []}]
    if route.policy.required_roles:
        roles = ", ".join(f"`{r}`" for r in route.policy.required_roles)
        operation["description"] += f"\n\nRequires one of the roles {roles} (else 403)."
    if route.policy.unique_fields:
        unique = " and ".join(f"`{name}`" for name in route.policy.unique_fields)
        operation["description"] += f"\n\n{unique} must be unique in the tenant (409 when taken)."
    return operation


def _success_status(route: Route) -> int:
    return route.policy.response.success_status or 200


def _request_body(route: Route, schemas: SchemaBuilder) -> dict[str, Any] | None:
    if not route.body:
        return None
    if route.body == "*":
        bound = {p for p in route.matcher.field_paths if "." not in p}
        json_schema = (
            schemas.object_schema(route.input, Direction.INPUT, without=bound)
            if bound
            else schemas.message_ref(route.input, Direction.INPUT)
        )
    else:
        json_schema = schemas.field_schema(route.input.fields_by_name[route.body], Direction.INPUT)
    content: dict[str, Any] = {_JSON: {"schema": json_schema}}
    example = request_example(route)
    if present(example):
        content[_JSON]["example"] = example
    if route.policy.uploads:
        content["multipart/form-data"] = _multipart(route, schemas.comments)
    if route.body == "*":
        content[FORM] = _form(route, schemas.comments)
    # Every body route reads one; an empty body is read as `{}`, which the rules may refuse.
    return {"required": True, "content": content}


def _text_properties(route: Route, comments: Comments) -> tuple[dict[str, Schema], list[str]]:
    """The request fields a text part or form field can set (not the uploads' own fields, not the path's),
    and those that are required."""
    target = _body_message(route)
    uploads = route.policy.uploads
    carried = {u.bytes_field for u in uploads} | {
        u.content_type_field for u in uploads if u.content_type_field
    }
    bound = set(route.matcher.field_paths)
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for field in _text_fields(target):
        if field.name not in carried and field.name not in bound:
            text, needed = ruled_text_schema(field)
            properties[field.name] = _described(text, comments.get(field.full_name, ""))
            if needed:
                required.append(field.name)
    return properties, required


def _body_message(route: Route) -> Descriptor | None:
    return route.input if route.body == "*" else route.input.fields_by_name[route.body].message_type


def _form(route: Route, comments: Comments) -> dict[str, Any]:
    """An HTML form's body (gateway/form.py): its fields bind like JSON keys; a blank one is not given."""
    properties, required = _text_properties(route, comments)
    if route.policy.checks_credentials:
        # An OAuth 2.0 token request's own parameters, accepted and ignored (RFC 6749 §4.3, §6).
        for name in OAUTH_PARAMETERS:
            if name not in properties:
                oauth: Schema = {"type": "string", "description": "OAuth 2.0 parameter, ignored."}
                if name == "grant_type":
                    oauth["enum"] = sorted(OAUTH_GRANTS)
                properties[name] = oauth
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    target = _body_message(route)
    if target is not None:
        schema.update(message_keywords(target, properties))
    return {"schema": schema}


def _multipart(route: Route, comments: Comments) -> dict[str, Any]:
    """Text parts bind like JSON keys; each upload's file part is binary with its limits."""
    target = _body_message(route)
    uploads = route.policy.uploads
    properties, required = _text_properties(route, comments)
    encoding: dict[str, Any] = {}
    for upload in uploads:
        limit = upload.max_bytes
        notes = [
            f"At most {limit} bytes (413 beyond)."
            if limit
            else "Up to the gateway's body limit (413 beyond)."
        ]
        file_schema: Schema = {"type": "string", "format": "binary"}
        if upload.content_types:
            notes.append(f"Accepted by content: {', '.join(upload.content_types)} (415 otherwise).")
            file_schema["contentMediaType"] = (
                upload.content_types[0] if len(upload.content_types) == 1 else "image/*"
            )
            if not all(t.startswith("image/") for t in upload.content_types):
                file_schema["contentMediaType"] = "application/octet-stream"
            encoding[upload.form_field] = {"contentType": ", ".join(upload.content_types)}
        comment = comments.get(f"{target.full_name}.{upload.bytes_field}", "") if target else ""
        properties[upload.form_field] = _described(file_schema, " ".join([comment, *notes]).strip())
    # Unknown parts are refused (400), as unknown keys of a JSON body are.
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if target is not None:
        schema.update(message_keywords(target, properties))
    media: dict[str, Any] = {"schema": schema}
    if encoding:
        media["encoding"] = encoding
    return media


def _text_fields(message: Descriptor | None) -> Iterator[FieldDescriptor]:
    """Fields a multipart text part can set: scalars and enums (repeated ones by repeating the part)."""
    if message is None:
        return
    for field in message.fields:
        if field.message_type is None:
            yield field


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description} if description else schema


def _success(route: Route, schemas: SchemaBuilder) -> dict[str, Any]:
    shape = route.policy.response
    headers: dict[str, Any] = headers_ref()
    example = response_example(route)
    if route.server_streaming:
        item = schemas.message_ref(route.output, Direction.OUTPUT)
        sse = "SSE: one `data:` event per message (a JSON object of the item schema)"
        if shape.sse_id_field:
            sse += f", `id:` = its `{shape.sse_id_field}`"
        streamed: dict[str, Any] = {
            "text/event-stream": {
                "schema": {"type": "string", "description": sse},
                "x-item-schema": item,
            },
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": "One JSON object of the item schema per line.",
                },
                "x-item-schema": item,
            },
        }
        if present(example):
            for media, text in stream_examples(route, example).items():
                streamed[media]["example"] = text
        return {
            "description": "A live stream, by `Accept`: " + sse + "; or NDJSON, one item per line.",
            "headers": headers,
            "content": streamed,
        }
    if shape.binary.data_field:
        if shape.binary.etag_field:
            headers["ETag"] = {"description": "Entity tag of this content.", "schema": {"type": "string"}}
        if shape.cache_control:
            headers["Cache-Control"] = {"schema": {"type": "string", "const": shape.cache_control}}
        return {
            "description": "The content itself, with its media type.",
            "headers": headers,
            "content": {media: {"schema": _BINARY} for media in _binary_media_types(route)},
        }
    message: Descriptor | None = route.output  # the payload's message, when it is one
    if route.response_body:
        field = route.output.fields_by_name[route.response_body]
        message = None if is_repeated(field) else field.message_type
    if message is not None:
        payload = schemas.message_ref(message, Direction.OUTPUT)
    else:
        payload = schemas.field_schema(field, Direction.OUTPUT)
    if shape.members and message is not None:
        payload = schemas.members_schema(message, ((m.name, m.field or m.name) for m in shape.members))
    if shape.cache_control:
        headers["Cache-Control"] = {"schema": {"type": "string", "const": shape.cache_control}}
    json_media: dict[str, Any] = {"schema": payload}
    description = "The document itself (no envelope)."
    if not shape.omit_envelope:
        json_media["schema"] = {"type": "object", "properties": {"data": payload}, "required": ["data"]}
        description = 'Success: `{"data": …}`.'
    if present(example):
        json_media["example"] = enveloped(route, example)
    return {"description": description, "headers": headers, "content": {_JSON: json_media}}


def _binary_media_types(route: Route) -> list[str]:
    """The media types a binary route serves: those its service accepts in uploads, if it has any."""
    service = route.input.file.pool.FindServiceByName(route.backend)
    accepted: list[str] = []
    for method in service.methods:
        options = method.GetOptions()
        if options.HasExtension(options_pb2.route):
            for upload in options.Extensions[options_pb2.route].uploads:
                accepted.extend(t for t in upload.content_types if t not in accepted)
    return accepted or ["application/octet-stream"]


def _not_modified() -> dict[str, Any]:
    return {
        "description": "Not modified: the `If-None-Match` ETag still matches; no body.",
        "headers": {"ETag": {"schema": {"type": "string"}}, **headers_ref()},
    }
