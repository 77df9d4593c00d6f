"""The HTTP server under `mien serve`: uvicorn with a deadline on request headers.

What bounds a slow client: the request line and headers must arrive within `header_timeout_s`
of the connection opening or of the previous response (here; uvicorn has no such limit, and
resets its keep-alive timer on every byte, so a client trickling a header a byte at a time
held its connection for ever), and may be at most 16 KiB (h11's limit in uvicorn); the body
must arrive within `Settings.upload_timeout_s` (`mien.api.uploads.BodyLimit`); an idle
keep-alive connection is closed after uvicorn's `timeout_keep_alive` (5 s). Behind a proxy,
its own limits (nginx: `client_header_timeout`, `client_body_timeout`) come first."""

from __future__ import annotations

import json
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from mien.api.errors import payload

log = logging.getLogger("mien.api")


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol; a connection whose next request's headers are not complete
    `header_timeout_s` after it began waiting for them gets 408 (or, if it sent nothing, is
    just closed)."""

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        self._header_timer = None
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        """The deadline runs from when the connection starts waiting for a request (h11's IDLE)
        until its headers are in; more bytes do not move it."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not waiting:
            self._stop_header_timer()
        elif self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.conn.trailing_data[0]:  # part of a request came: say why it is dropped
            seconds = f"{self.header_timeout_s:g}"
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.info("%s: request headers incomplete after %s s; connection closed", client,
                     seconds)
            body = json.dumps(payload("request_timeout", f"the request headers did not arrive "
                                      f"within {seconds} s; send them at once")).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json"
                                 b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(body), body))
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` with this header deadline."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})


def run_server(app, *, host: str, port: int, header_timeout_s: float,
               log_level: str = "info") -> None:
    """Serve `app` until interrupted; mien's own log lines (dropped uploads, slow headers) go
    where uvicorn's go."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["mien"] = {"handlers": ["default"], "level": log_level.upper(),
                                     "propagate": False}
    uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=log_config,
                http=header_timeout_protocol(header_timeout_s), timeout_graceful_shutdown=5)
