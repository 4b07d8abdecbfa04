"""The web UI: static pages served by the API server (no CDN, no build step).

``index.html`` is sent with ``Cache-Control: no-cache`` and names its assets under
``/static/<rev>/``, where ``rev`` is a hash of their contents, so those can be cached for good: an
upgrade changes the hash and the browser fetches the new files. ``/static/<name>`` also works,
without caching. The files in ``static/`` are read once, when the app is built (restart the server
after editing them), and only those are served, so no request path ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from looplab.core.errors import NotFound

STATIC = Path(__file__).parent / "static"
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def mount(app: FastAPI) -> None:
    """Serve the UI: ``/`` (index.html) and ``/static/...``."""
    files = {
        p.name: p.read_bytes() for p in sorted(STATIC.iterdir()) if p.is_file() and p.name[0] != "."
    }
    rev = hashlib.sha256(b"".join(files.values())).hexdigest()[:12]
    index = files.pop("index.html", b"").decode().replace("{{rev}}", rev)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index_page() -> HTMLResponse:
        headers = {**_SECURITY, "Cache-Control": "no-cache", "Content-Security-Policy": _CSP}
        return HTMLResponse(index, headers=headers)

    def send(name: str, cache: str) -> Response:
        body = files.get(name)
        if body is None:
            raise NotFound(f"no static file {name!r}", details={"file": name})
        suffix = Path(name).suffix
        media = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(body, media_type=media, headers={**_SECURITY, "Cache-Control": cache})

    @app.api_route("/static/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def static_file(name: str) -> Response:
        return send(name, "no-cache")

    @app.api_route("/static/{file_rev}/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def static_versioned(file_rev: str, name: str) -> Response:
        # A stale page asking for an old revision gets today's file, uncached.
        cache = "public, max-age=31536000, immutable" if file_rev == rev else "no-cache"
        return send(name, cache)
