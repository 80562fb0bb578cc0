"""The shutdown deadline in a real backend process: a close that never ends is given up, and one that
blocks the event loop is cut short by the watchdog; either way the process exits within its grace plus
two seconds and its log names what it was waiting for."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from harness.backends import start_backend
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from meshkit.shutdown import EXIT_CODE, MARGIN

pytestmark = pytest.mark.infra

GRACE = 2.0


@pytest.mark.parametrize(
    ("hang", "exit_code", "message"),
    [
        ("await", 0, "shutdown step did not finish in time"),
        ("block", EXIT_CODE, "shutdown deadline passed; exiting now"),
    ],
)
def test_a_hanging_shutdown_still_exits_within_grace_plus_margin(
    hang: str, exit_code: int, message: str, infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path
) -> None:
    env = {
        **infra.env(),
        "PORTICO_SHUTDOWN_GRACE": str(GRACE),
        "PORTICO_JWKS_TARGET": issuer.target,
        "PORTICO_SLOW_HANG_ON_SHUTDOWN": hang,
    }
    slow = start_backend("slow", env, tmp_path, module="harness.programs.slow_backend", timeout=60)
    try:
        signalled = time.monotonic()
        slow.proc.popen.send_signal(signal.SIGTERM)
        code = slow.proc.popen.wait(GRACE + MARGIN + 10)
        took = time.monotonic() - signalled
        print(f"FAULT shutdown_hang[{hang}]: exit_s={took:.2f} code={code} limit_s={GRACE + MARGIN}")
        assert code == exit_code
        assert took <= GRACE + MARGIN
        lines = [json.loads(line) for line in slow.proc.log().splitlines() if line.startswith("{")]
        named = [line for line in lines if line["message"] == message]
        assert named, slow.proc.log()[-3000:]
        assert "close" in str(named[0].get("step") or named[0].get("waiting_for"))
    finally:
        slow.proc.terminate()
