"""What the HTTP service allows and loads; one frozen record built by `mien serve` or a test."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from mien.detection.base import DEFAULT_OPTIONS, DetectorOptions
from mien.errors import MienError

API_KEY_ENV = "MIEN_API_KEY"
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Settings:
    # Models: loaded once per process, shared by every worker thread.
    detector: str | None = None  # None: the default, YuNet (bundled)
    attributes: tuple[str, ...] | None = None  # specs as in `mien analyze`; None: every bundled one
    min_face: int = DEFAULT_OPTIONS.min_face
    threshold: float | None = None
    max_faces: int = DEFAULT_OPTIONS.max_faces
    # YuNet's fine view for photos over 640 px (None: its default, 3x; 0: off): the server's
    # bound on the seconds one large photo may take.
    fine_scale: float | None = None
    # Limits. A phone photo is 2-6 MB and 12-50 MP; anything larger is more likely an accident
    # or an attack than a face photo.
    max_upload_bytes: int = 16 * MIB
    max_pixels: int = 50_000_000
    max_batch_images: int = 16
    # Decoded pixels all workers may hold at once; a worker waits for its image's share. A
    # worker holds one image at a time: 7 bytes a pixel while it is decoded (Pillow's 4 and the
    # array's 3), then the array and YuNet's tiles. None: two images of max_pixels.
    pixel_budget: int | None = None
    # Pixels of all the images of one request (-> 413 before any work): YuNet's fine view
    # takes seconds per 10 MP, so more could not finish within timeout_s anyway.
    # None: four images of max_pixels.
    max_request_pixels: int | None = None
    # Threads that decode, detect and classify. OpenCV and ONNX Runtime release the GIL, so
    # threads use the cores without loading the models once per process.
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    queue_size: int = 32  # requests allowed to wait for a worker before answering 503
    timeout_s: float = 30.0  # per request, waiting in the queue included -> 504
    # A request body must arrive within this (-> 408): 16 MiB in 120 s needs ~1.1 Mbit/s, and a
    # stalled or trickling client cannot hold a connection for ever.
    upload_timeout_s: float = 120.0
    # Request line and headers must arrive within this (-> 408, mien.api.server): a client
    # sends them at once, and one trickling them a byte at a time would hold its connection.
    header_timeout_s: float = 10.0
    api_key: str | None = None  # when set, /v1 routes need the header X-API-Key
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers (same-origin page only)

    def __post_init__(self):
        if self.pixel_budget is None:
            object.__setattr__(self, "pixel_budget", 2 * self.max_pixels)
        if self.max_request_pixels is None:
            object.__setattr__(self, "max_request_pixels", 4 * self.max_pixels)
        checks = {
            "max_upload_bytes": self.max_upload_bytes >= 1,
            "max_pixels": self.max_pixels >= 1,
            "max_batch_images": self.max_batch_images >= 1,
            "pixel_budget": self.pixel_budget >= 1,
            "max_request_pixels": self.max_request_pixels >= 1,
            "workers": self.workers >= 1,
            "queue_size": self.queue_size >= 0,
            "timeout_s": self.timeout_s > 0,
            "upload_timeout_s": self.upload_timeout_s > 0,
            "header_timeout_s": self.header_timeout_s > 0,
            "fine_scale": self.fine_scale is None or self.fine_scale >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise MienError(f"{name}={getattr(self, name)!r}: use a positive value")
        DetectorOptions(self.min_face, self.threshold, max_faces=self.max_faces)  # checks them

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Settings with the API key taken from $MIEN_API_KEY unless given."""
        settings = cls(**overrides)
        if settings.api_key is None and os.environ.get(API_KEY_ENV):
            settings = replace(settings, api_key=os.environ[API_KEY_ENV])
        return settings
