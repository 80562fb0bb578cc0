"""``GET /openapi.json`` (the document of the live route table) and ``GET /docs`` (Swagger UI).

Both are operations endpoints: public and not rate limited (they never reach the dispatcher). The
document is rebuilt only when the route table object changes (a refresh swaps whole tables), so a
backend that gains an RPC shows up at the next refresh and every other request is served from cache.
Swagger UI comes from the local `swagger-ui-dist` package; only the files the page needs are served,
by name from a fixed list, so no request can name any other file.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.errors import error_response
from gateway.openapi.comments import Comments, load_comments
from gateway.openapi.document import build_document
from gateway.routing.live import DESCRIPTOR_SET, LiveRoutes
from gateway.routing.table import RouteTable
from gateway.state import state_of
from gateway.status_table import ROUTE_NOT_FOUND

ASSETS_PATH = "/docs/assets"
# The swagger-ui-dist files the page loads; nothing else under the directory is reachable.
SWAGGER_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png", "index.css"}
)
INIT_SCRIPT = "portico-init.js"
_INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayOperationId: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Portico API</title>
  <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
  <link rel="stylesheet" href="{ASSETS_PATH}/index.css">
  <link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{ASSETS_PATH}/{INIT_SCRIPT}"></script>
</body>
</html>
"""
# Only our own origin: the page must work offline and load nothing from a CDN. Swagger UI sets
# inline styles and shows data: images, hence those two allowances.
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"
_ASSET_CACHE = "public, max-age=3600"


def _version() -> str:
    try:
        return metadata.version("portico")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class OpenApiDocs:
    """The two endpoints, with the document cached per route table."""

    def __init__(self, assets_dir: Path, descriptor_set: Path = DESCRIPTOR_SET) -> None:
        self.assets_dir = assets_dir
        self.comments: Comments = load_comments(descriptor_set)
        self._version = _version()
        self._cached: tuple[RouteTable, bytes] | None = None

    def document_bytes(self, routes: LiveRoutes) -> bytes:
        table = routes.table
        if self._cached is None or self._cached[0] is not table:
            document = build_document(table, self.comments, version=self._version, source=routes.source)
            self._cached = (table, json.dumps(document, ensure_ascii=False).encode("utf-8"))
        return self._cached[1]

    async def openapi(self, request: Request) -> Response:
        return Response(self.document_bytes(state_of(request)["routes"]), media_type="application/json")

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(_PAGE, headers={"Content-Security-Policy": _CSP})

    async def asset(self, request: Request) -> Response:
        state_of(request)["route_template"] = f"{ASSETS_PATH}/{{name}}"  # the metrics label, not the raw path
        name = request.path_params["name"]
        if name == INIT_SCRIPT:
            return Response(_INIT_JS, media_type="text/javascript", headers={"Cache-Control": _ASSET_CACHE})
        path = self.assets_dir / name
        if name not in SWAGGER_FILES or not path.is_file():
            return error_response(request, 404, ROUTE_NOT_FOUND)
        return FileResponse(path, headers={"Cache-Control": _ASSET_CACHE})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
            Route(ASSETS_PATH + "/{name}", self.asset, methods=["GET"]),
        ]
