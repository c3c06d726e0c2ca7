"""Static files under content-hashed names, served from memory with a year's cache.

``/static/app.3f2a1b9c04de.css`` names the exact bytes, so browsers keep it for a year
and a deploy that changes the file changes its name. The files are a few kilobytes,
read once at start-up and kept gzipped beside the plain bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
_COMPRESSIBLE = {".css", ".js", ".svg", ".txt", ".json"}


@dataclass(frozen=True)
class Asset:
    url: str
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


class Assets:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self._by_name: dict[str, Asset] = {}
        self._by_url: dict[str, Asset] = {}
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            name = path.relative_to(directory).as_posix()
            stem, dot, suffix = name.rpartition(".")
            hashed = f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"
            media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith(("javascript", "json")):
                media_type += "; charset=utf-8"
            gzipped = gzip.compress(body, 9, mtime=0) if path.suffix in _COMPRESSIBLE else None
            asset = Asset(f"/static/{hashed}", body, gzipped, media_type, f'"{digest}"')
            self._by_name[name] = asset
            self._by_url[asset.url] = asset

    def url(self, name: str) -> str:
        """The hashed URL of a static file (templates call this as ``asset('app.css')``)."""
        return self._by_name[name].url

    def respond(self, request: Request) -> Response | None:
        asset = self._by_url.get(request.url.path)
        if asset is None:
            return None
        headers = {"Cache-Control": IMMUTABLE, "ETag": asset.etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)
