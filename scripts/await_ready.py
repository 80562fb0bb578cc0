"""Wait until the gateway's /ready is 200 with every dependency up, showing what is still down, then
print the URLs.

Runs as one of the ``make up`` processes and then idles: honcho stops the whole mesh if any process
exits, so this one stays until it is told to stop.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from meshkit.config.defaults import BACKEND_PORTS, GATEWAY_PORT, LOOPBACK

HOST = os.environ.get("PORTICO_GATEWAY_HOST", LOOPBACK)
PORT = int(os.environ.get("PORTICO_GATEWAY_PORT", str(GATEWAY_PORT)))
BASE = f"http://{HOST}:{PORT}"
# Between two /ready calls while something is down: each call is a few milliseconds of the gateway's CPU
# (it probes every dependency), so a tenth of a second adds nothing measurable to start-up and lets the
# ready line follow the last dependency closely.
POLL_SECONDS = 0.1


def down_parts(response: httpx.Response) -> str:
    """What is not up yet; /ready is 200 ("degraded") while only dependencies it can serve without are
    down, and a 503 envelope when it cannot serve."""
    try:
        body = response.json()
        checks = body["checks"] if "checks" in body else body["error"]["details"]["checks"]
        return ", ".join(name for name, state in checks.items() if state != "up")
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = float(os.environ.get("PORTICO_UP_STARTED", time.time()))
    last_report = 0.0
    with httpx.Client(timeout=3.0) as client:
        while True:
            try:
                response = client.get(f"{BASE}/ready")
                if response.status_code == 200 and response.json().get("status") == "ready":
                    break
                waiting_for = down_parts(response)
            except httpx.HTTPError:
                waiting_for = "gateway"
            now = time.time()
            if now - last_report >= 2:
                print(f"[ready] {now - started:5.1f}s waiting for: {waiting_for}", flush=True)
                last_report = now
            time.sleep(POLL_SECONDS)
    elapsed = time.time() - started
    backends = "".join(
        f"  {name:<9} grpc://{LOOPBACK}:{os.environ.get(f'PORTICO_{name.upper()}_PORT', str(port))}\n"
        for name, port in BACKEND_PORTS.items()
    )
    print(
        f"[ready] Portico is ready in {elapsed:.1f}s\n"
        f"  gateway   {BASE}  (/health /ready /metrics)\n"
        f"{backends}"
        "  Ctrl-C stops everything.",
        flush=True,
    )
    signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
