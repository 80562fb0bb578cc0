"""JSON logs carry the active trace and span ids and any extra fields."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from observability.logs import JsonFormatter, TraceContextFilter


def _render(record: logging.LogRecord) -> dict[str, object]:
    TraceContextFilter().filter(record)
    return json.loads(JsonFormatter("portico-test").format(record))  # type: ignore[no-any-return]


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("portico.test", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_log_line_inside_a_span_has_its_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        line = _render(_record("hello %s"))
        ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert line["service"] == "portico-test"
    assert line["level"] == "INFO"


def test_log_line_outside_a_span_has_empty_ids_and_extras() -> None:
    line = _render(_record("plain", request_id="abc", color_message="\x1b[36mplain"))
    assert line["trace_id"] == ""
    assert line["request_id"] == "abc"
    assert "color_message" not in line


def test_secrets_are_redacted_from_rendered_lines() -> None:
    from observability.logs import RedactingFormatter

    formatter = RedactingFormatter(JsonFormatter("portico-test"))
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlLXZhbHVl"  # noqa: S105 (a fake JWT)
    record = _record(
        "inserting %s and %s",
        request_id="r1",
    )
    record.args = ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", token)
    TraceContextFilter().filter(record)
    line = formatter.format(record)
    assert "argon2id" not in line
    assert token not in line
    assert line.count("[REDACTED]") == 2
