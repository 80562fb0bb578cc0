"""The AsyncAPI document of Portico's events, generated from the code that publishes them.

Each :class:`~meshkit.events.envelope.Channel` a backend declares becomes a FastStream publisher whose
payload schema is the ``events.v1.Event`` descriptor narrowed to that channel (its types, its entity);
FastStream renders the document, and the Kafka headers and record key the outbox writes are added to
each message (FastStream's message model has no headers).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from meshkit.config.defaults import KAFKA_BOOTSTRAP
from meshkit.events.envelope import CONTENT_TYPE, Channel
from meshkit.events.protoschema import MessageModels
from stubs.events.v1 import events_pb2

__all__ = ["asyncapi_document", "event_model", "render", "spec_broker"]

_ROOT = Path(__file__).resolve().parents[2]
_ENTITY_FIELDS = frozenset(f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["entity"].fields)
_TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def event_model(models: MessageModels, channel: Channel) -> type[BaseModel]:
    """``events.v1.Event`` as sent on ``channel``: only its entity, ``type`` one of its types."""
    return models.model(
        events_pb2.Event.DESCRIPTOR,
        name=f"{channel.entity}.Event",
        keep=lambda field: field.name not in _ENTITY_FIELDS or field.name == channel.entity,
        extra={"type": {"enum": list(channel.types)}},
    )


def spec_broker(channels: Sequence[Channel]) -> KafkaBroker:
    """A broker (never connected) with one publisher per channel, for FastStream to document."""
    bootstrap = KAFKA_BOOTSTRAP
    broker = KafkaBroker(bootstrap, description="Portico's Kafka (the local default address).")
    models = MessageModels()
    for channel in channels:
        broker.publisher(
            channel.topic,
            title=channel.topic,
            description=f"{channel.description} Published by the {channel.publisher} backend.",
            schema=event_model(models, channel),
        )
    return broker


def _headers(channel: Channel) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            "event-type": {"type": "string", "enum": list(channel.types), "description": "= Event.type"},
            "traceparent": {
                "type": "string",
                "pattern": _TRACEPARENT,
                "description": "W3C trace context of the publishing span (continues the writer's trace).",
            },
            "tracestate": {"type": "string", "description": "W3C trace state, when there is one."},
            "baggage": {"type": "string", "description": "W3C baggage of the writer, when there is some."},
            "correlation_id": {"type": "string", "description": "Set by FastStream on every record."},
        },
        "required": ["content-type", "event-type"],
    }


def _project_version() -> str:
    with (_ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def asyncapi_document(channels: Sequence[Channel]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``channels`` as JSON-compatible data."""
    spec = AsyncAPI(
        spec_broker(channels),
        title="Portico events",
        version=_project_version(),
        description=(
            "Domain events of the Portico backends, published from transactional outboxes at least "
            "once: consumers skip an event_id they have applied. The record value is a binary "
            "events.v1.Event (proto/events/v1/events.proto); the schemas describe its fields with the "
            ".proto names and protobuf's JSON mapping of the types."
        ),
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    document["defaultContentType"] = CONTENT_TYPE
    _sort(document, channels)
    by_topic = {channel.topic: channel for channel in channels}
    for name, message in document["components"]["messages"].items():
        channel = by_topic[name.removesuffix(":Message")]
        message["contentType"] = CONTENT_TYPE
        message["headers"] = _headers(channel)
        message["bindings"] = {
            "kafka": {
                "key": {"type": "string", "description": "Event.entity_id (per-key order is kept)."},
                "bindingVersion": "0.5.0",
            }
        }
    return document


def _sort(document: dict[str, Any], channels: Sequence[Channel]) -> None:
    """FastStream's order varies between runs; the committed file must not."""
    rank = {channel.topic: i for i, channel in enumerate(channels)}
    for section in (document, document["components"]):
        for name in ("channels", "operations", "messages", "schemas"):
            if name in section:
                section[name] = {
                    key: section[name][key]
                    for key in sorted(section[name], key=lambda k: (rank.get(k.split(":")[0], -1), k))
                }


def render(document: dict[str, Any]) -> str:
    """Stable text of the document (what is committed under docs/asyncapi/)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
