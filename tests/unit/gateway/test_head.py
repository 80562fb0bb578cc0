from __future__ import annotations

from gateway.head import allow_header, head_of_stream


def test_allow_adds_head_where_get_is() -> None:
    assert allow_header(("POST", "GET")) == "GET, HEAD, POST"
    assert allow_header(("POST",)) == "POST"
    assert allow_header(("GET", "HEAD")) == "GET, HEAD"


def test_head_of_a_stream_has_its_type_and_no_length() -> None:
    response = head_of_stream("text/event-stream", {"Cache-Control": "no-cache"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert "content-length" not in response.headers
    assert response.body == b""
