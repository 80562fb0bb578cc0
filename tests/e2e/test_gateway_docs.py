"""/docs in a real browser: Debian's headless Chromium renders Swagger UI from the gateway's local
assets (the page's CSP allows nothing else) and lists the operations of the live /openapi.json."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from harness.mesh import Mesh

pytestmark = pytest.mark.infra
CHROMIUM = "/usr/bin/chromium"
_ASSET_REQUESTS = re.compile(
    r'portico_gateway_requests_total\{method="GET",route="/docs/assets/\{name\}",status="200"\} ([0-9.e+]+)'
)


def asset_requests(gateway_url: str) -> float:
    """How many asset requests the gateway answered 200, from its own metrics."""
    found = _ASSET_REQUESTS.search(httpx.get(f"{gateway_url}/metrics", timeout=5).text)
    return float(found.group(1)) if found else 0.0


def rendered_dom(url: str, profile: Path) -> str:
    assert shutil.which(CHROMIUM), "Debian's chromium is installed by the project set-up"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_docs_render_the_operations_from_local_assets(mesh: Mesh, tmp_path: Path) -> None:
    before = asset_requests(mesh.gateway_url)
    dom = rendered_dom(f"{mesh.gateway_url}/docs", tmp_path / "chromium-profile")
    # Swagger UI built these nodes from /openapi.json: the raw page has none of them.
    assert 'class="swagger-ui' in dom
    assert "Portico API" in dom
    spec = httpx.get(f"{mesh.gateway_url}/openapi.json", timeout=10).json()
    for path, item in spec["paths"].items():
        assert f'data-path="{path}"' in dom, path
        for operation in item.values():
            assert operation["operationId"] in dom, operation["operationId"]
    # The bundle, stylesheet and start-up script came from the gateway itself.
    assert asset_requests(mesh.gateway_url) - before >= 3
