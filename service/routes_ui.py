"""The web page: `/` and its few static files (service/static/), for trying the API in a browser.

The page is plain HTML, CSS and JavaScript that call the public API (/v1/jobs) like any other client;
nothing here is a second way into the service. It loads nothing from other hosts, and the headers say so
to the browser too (Content-Security-Policy), so a hostile label or transcript cannot pull anything in.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.errors import ApiError

STATIC_DIR = Path(__file__).parent / "static"
# Media from uploads is played from a blob: URL made in the page; everything else is this origin only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# One flat folder of files with plain names: no path from the URL ever reaches the filesystem unchecked.
_ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\.(js|css|svg)")
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (cheap: ETag/Last-Modified): a page newer than its script would break.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    path = STATIC_DIR / name
    if not _ASSET_NAME.fullmatch(name) or not path.is_file():
        raise ApiError(404, "not_found", f"no file {name!r}")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)
