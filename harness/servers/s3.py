"""A real S3-compatible HTTP server in-process (moto's), for tests of the S3 blob store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from infra.procs import free_port


@contextmanager
def s3_server() -> Iterator[str]:
    """Serve S3 on a free loopback port; yields the endpoint URL. Buckets start empty: create them.

    Needs AWS credentials in the environment (any values): set fake ones in the test, e.g. with
    ``monkeypatch.setenv("AWS_ACCESS_KEY_ID", "portico-test")`` and ``AWS_SECRET_ACCESS_KEY``.
    """
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        # stop() only ends serve_forever; close the listening socket too, so clients afterwards are
        # refused at once instead of waiting on a backlog nobody reads.
        if server._server is not None:
            server._server.server_close()
