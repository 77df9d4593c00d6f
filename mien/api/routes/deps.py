"""What the routes share: the service, the API-key check, reading uploads from a request."""

from __future__ import annotations

import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException

from mien.api.errors import ApiError
from mien.api.service import Service
from mien.api.uploads import check_upload

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Needed when the server runs with $MIEN_API_KEY set.")


def service(request: Request) -> Service:
    return request.app.state.service


async def loaded_service(request: Request) -> Service:
    """The service with its models loaded (at startup normally; here when no lifespan ran)."""
    import asyncio

    svc = service(request)
    if not svc.ready:
        await asyncio.to_thread(svc.load)
    return svc


def require_api_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    expected = service(request).settings.api_key
    if not expected:
        return
    if key is None:
        raise ApiError(401, "unauthorized", "missing X-API-Key header; send the server's key")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "wrong X-API-Key; send the key the server was "
                                            "started with ($MIEN_API_KEY)")


async def read_uploads(request: Request, max_files: int,
                       max_bytes: int) -> list[tuple[str, bytes | ApiError]]:
    """Images from a multipart form (every file part, in order) or from the raw body. A file
    that fails its checks is returned as its ApiError so a batch can report it inline."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        data = await request.body()
        try:
            check_upload(data, content_type, "request body", max_bytes)
        except ApiError as exc:
            return [("request body", exc)]
        return [("request body", data)]
    try:  # the parser stops at the first file part over the limit
        form = await request.form(max_files=max_files, max_fields=max_files + 32)
    except HTTPException as exc:
        if not str(exc.detail).startswith("Too many files"):  # starlette's words for it
            raise
        raise ApiError(413, "too_many_files", f"more than {max_files} files in one request; "
                                              f"send at most {max_files}") from None
    files = [v for _, v in form.multi_items() if not isinstance(v, str)]
    if not files:
        raise ApiError(422, "no_file", "the form has no file part; send the image as a file "
                                       "field, e.g. curl -F file=@photo.jpg")
    out: list[tuple[str, bytes | ApiError]] = []
    for i, part in enumerate(files):
        name = part.filename or f"file {i + 1}"
        data = await part.read(max_bytes + 1)  # no more than the check needs
        try:
            check_upload(data, part.content_type, name, max_bytes, size=part.size)
            out.append((name, data))
        except ApiError as exc:
            out.append((name, exc))
    return out
