"""SIGTERM drains: an in-flight call finishes, new calls are refused, the process exits cleanly."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from harness.backends import start_backend
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer

pytestmark = pytest.mark.infra


def test_sigterm_lets_the_in_flight_call_finish(infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path) -> None:
    env = {
        **infra.env(),
        "PORTICO_SHUTDOWN_GRACE": "10",
        "PORTICO_JWKS_TARGET": issuer.target,
    }
    auth = (("authorization", f"Bearer {issuer.token('user-1')}"),)
    slow = start_backend("slow", env, tmp_path, module="harness.programs.slow_backend", timeout=60)
    proc, target = slow.proc, slow.target
    try:
        result: dict[str, object] = {}
        with grpc.insecure_channel(target) as channel:
            sleep = channel.unary_unary("/portico.test.Slow/Sleep")

            def call() -> None:
                try:
                    result["reply"] = sleep(b"2500", timeout=20, metadata=auth)
                except grpc.RpcError as exc:
                    result["error"] = exc.code()

            worker = threading.Thread(target=call)
            worker.start()
            time.sleep(0.7)  # the call is now in flight
            proc.popen.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # past the half second in which calls already sent are still taken

            # Draining: a new call is refused while the old one is still running.
            with grpc.insecure_channel(target) as fresh, pytest.raises(grpc.RpcError) as refused:
                fresh.unary_unary("/portico.test.Slow/Sleep")(b"1", timeout=3, metadata=auth)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert proc.popen.poll() is None, "the server must wait for the in-flight call"

            worker.join(20)
        assert result == {"reply": b"done"}
        assert proc.popen.wait(15) == 0
        assert '"shutting down"' in proc.log()
    finally:
        proc.terminate()
