"""Checks on uploaded bytes before anything decodes them: size, declared type, magic number,
pixel count. Each failure is an ApiError with the status a client can act on."""

from __future__ import annotations

import asyncio
import io

from mien.api.errors import ApiError

# Leading bytes of the formats the decoder accepts; anything else is refused before decoding.
MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"WEBP", 8, "image/webp"),  # after "RIFF" and the chunk size
)
# Declared types a browser or HTTP client may send for an image file.
NEUTRAL_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file bytes
# A refused body is read and dropped up to this size before the 413 goes out: a server that
# closes a connection with unread bytes has it reset, and a client still sending never reads
# its 413 (32 clients posting 6.7 MB to a 4 MiB limit all got a connection reset instead).
DRAIN_BYTES = 64 << 20


def sniff(data: bytes) -> str | None:
    """The image media type that the leading bytes announce, or None."""
    for magic, offset, media_type in MAGIC:
        if data[offset:offset + len(magic)] == magic:
            if media_type == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return media_type
    return None


def check_upload(data: bytes, declared: str | None, name: str, max_bytes: int,
                 size: int | None = None) -> str:
    """Refuse what is empty, too big, declared as a non-image or not an image by its bytes;
    return the sniffed media type. `size`: the upload's length when `data` is only its start."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and declared not in NEUTRAL_TYPES and not declared.startswith("image/"):
        raise ApiError(415, "unsupported_media_type",
                       f"{name}: sent as {declared}; upload an image (JPEG, PNG, WebP, GIF, BMP, "
                       "TIFF) with an image/* content type")
    if not data:
        raise ApiError(422, "empty_upload", f"{name}: no bytes received; attach the image file")
    size = len(data) if size is None else size
    if size > max_bytes:
        raise ApiError(413, "payload_too_large",
                       f"{name}: {size:,} bytes exceeds the limit of {max_bytes:,}; "
                       "send a smaller or more compressed image")
    media_type = sniff(data)
    if media_type is None:
        raise ApiError(415, "unsupported_media_type",
                       f"{name}: not a JPEG, PNG, WebP, GIF, BMP or TIFF file by its content; "
                       "upload one of those")
    return media_type


def check_pixels(data: bytes, name: str, max_pixels: int) -> tuple[int, int]:
    """Width and height from the header alone, refusing decompression bombs before decoding."""
    from PIL import Image

    from mien.data.io import open_image

    try:
        with open_image(io.BytesIO(data)) as img:  # Pillow's warning off: judged below
            w, h = img.size
    except Image.DecompressionBombError as exc:  # Pillow's own cap, far above ours
        raise ApiError(413, "image_too_large", f"{name}: {exc}; downscale the image first"
                       ) from exc
    except Exception:  # corrupt headers are reported by the decoder with its own message
        return 0, 0
    if w * h > max_pixels:
        raise ApiError(413, "image_too_large",
                       f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}; "
                       "downscale the image first")
    return w, h


def check_batch_pixels(items: list[tuple[str, bytes | ApiError]], max_pixels: int,
                       max_total: int) -> list[tuple[str, bytes | ApiError]]:
    """Before any work is queued: each image over `max_pixels` becomes its own 413, and a
    request whose images add up to more than `max_total` pixels is refused whole (413)."""
    out, total = [], 0
    for name, data in items:
        if not isinstance(data, ApiError):
            try:
                w, h = check_pixels(data, name, max_pixels)
                total += w * h
            except ApiError as exc:
                data = exc
        out.append((name, data))
    if total > max_total:
        raise ApiError(413, "batch_too_large",
                       f"{len(items)} images of {total:,} pixels in all exceed the limit of "
                       f"{max_total:,} for one request; send fewer or smaller images")
    return out


class BodyLimit:
    """ASGI middleware: a request body over `limit(path)` bytes is refused with 413, from its
    Content-Length when sent, else as soon as the streamed bytes pass the limit; one that has
    not fully arrived `timeout_s` after the app first asks for it is refused with 408 (a stalled
    or trickling upload would otherwise hold its connection and worker slot for ever)."""

    def __init__(self, app, limit, timeout_s: float = 120.0):
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit(scope["path"])
        if limit is None:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            if int(length) <= DRAIN_BYTES:
                await _drain(receive, self.timeout_s)
            return await _too_large(send, int(length), limit)
        seen, deadline, complete = 0, None, False
        timeout_s = self.timeout_s

        async def counting_receive():
            nonlocal seen, deadline, complete
            if complete:  # the body is in; later calls wait for the client to disconnect
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise ApiError(408, "request_timeout",
                               f"the request body did not arrive within {timeout_s:g} s; send "
                               "it again over a faster connection, or a smaller image") from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not complete:
                        await _drain(receive, max(deadline - loop.time(), 0.0))
                        complete = True
                    raise ApiError(413, "payload_too_large",
                                   f"request body passed the limit of {limit:,} bytes; "
                                   "send a smaller image")
            return message

        return await self.app(scope, counting_receive, send)


async def _drain(receive, seconds: float) -> None:
    """Read and drop the rest of a refused body: up to DRAIN_BYTES, for at most `seconds`."""
    loop = asyncio.get_running_loop()
    end, seen = loop.time() + seconds, 0
    while seen <= DRAIN_BYTES:
        try:
            message = await asyncio.wait_for(receive(), max(end - loop.time(), 0.0))
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        seen += len(message.get("body", b""))


async def _too_large(send, length: int, limit: int) -> None:
    import json

    body = json.dumps({"error": "payload_too_large",
                       "detail": f"request body of {length:,} bytes exceeds the limit of "
                                 f"{limit:,}; send a smaller image"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
