"""Every failure leaves as JSON {"error": short code, "detail": one line naming the fix}.

Bad input is always a 4xx; only a bug in mien answers 500, and it is logged with its traceback."""

from __future__ import annotations

import logging

from mien.errors import (
    DeadlineExceeded,
    ImageReadError,
    MienError,
    MissingDependencyError,
    ModelFileError,
)

log = logging.getLogger("mien.api")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def payload(error: str, detail: str) -> dict:
    return {"error": error, "detail": detail}


def mien_error_status(exc: MienError) -> tuple[int, str]:
    """MienError subclasses -> (HTTP status, error code)."""
    if isinstance(exc, DeadlineExceeded):  # the caller has had its 504 already, as a rule
        return 504, "timeout"
    if isinstance(exc, ImageReadError):
        return 422, "unreadable_image"
    if isinstance(exc, (ModelFileError, MissingDependencyError)):
        return 503, "model_unavailable"  # the server's setup, not the caller's input
    return 422, "invalid_request"


def install(app) -> None:
    """Exception handlers on a FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    async def api_error(request, exc: ApiError):
        headers = {"WWW-Authenticate": "X-API-Key"} if exc.status == 401 else None
        return JSONResponse(payload(exc.error, exc.detail), exc.status, headers=headers)

    async def mien_error(request, exc: MienError):
        status, code = mien_error_status(exc)
        return JSONResponse(payload(code, str(exc)), status)

    async def http_error(request, exc: HTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error")
        detail = str(exc.detail)
        if exc.status_code in (404, 405):
            detail = f"{request.method} {request.url.path}: {detail.lower()}; see /docs"
        return JSONResponse(payload(code, detail), exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])  # drop "query"/"body"
        given = f"={first['input']!r}" if isinstance(first.get("input"), str | int) else ""
        detail = f"{where}{given}: {first.get('msg', 'invalid value')}" if where else str(exc)
        return JSONResponse(payload("invalid_request", detail), 422)

    async def client_disconnect(request, exc: ClientDisconnect):
        # The client's business, not a fault here: one line, no traceback, nobody to answer.
        client = request.client
        log.info("%s %s: the client%s left before its request had arrived", request.method,
                 request.url.path, f" {client.host}:{client.port}" if client else "")
        return Response(status_code=499)  # nginx's "client closed request", for access logs

    async def unexpected(request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(payload("internal_error", "unexpected server error; see the log"), 500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(MienError, mien_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_disconnect)
    app.add_exception_handler(Exception, unexpected)
