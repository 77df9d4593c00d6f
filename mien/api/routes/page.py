"""The web page at / and offline API docs at /docs: static files shipped in the package."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from mien.api.errors import ApiError

router = APIRouter(include_in_schema=False)

STATIC = {
    "index.html": "text/html; charset=utf-8",
    "docs.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "labels.js": "text/javascript; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Everything the page needs comes from this server; the camera's frames stay in blob: URLs.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                               "media-src 'self' blob:; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@lru_cache(maxsize=len(STATIC))
def _read(name: str) -> bytes:
    return (files("mien.api") / "static" / name).read_bytes()


def static_response(name: str) -> Response:
    if name not in STATIC:
        raise ApiError(404, "not_found", f"/static/{name}: no such file")
    return Response(_read(name), media_type=STATIC[name], headers=HEADERS)


@router.get("/")
def index() -> Response:
    return static_response("index.html")


@router.get("/docs")
def docs() -> Response:
    return static_response("docs.html")


@router.get("/static/{name}")
def static(name: str) -> Response:
    return static_response(name)
