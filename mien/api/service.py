"""The work behind the routes: models loaded once per process, a bounded worker pool, and the
analysis of uploaded bytes through the library's pipeline."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mien.api.errors import ApiError
from mien.api.settings import Settings
from mien.api.uploads import check_pixels
from mien.types import Face

ANNOTATE_FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}
DETECTORS_PER_THREAD = 8  # distinct (detector, min_face, threshold, max_faces) per worker


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """Per-request choices; None means the server's setting."""

    attributes: tuple[str, ...] | None = None  # a subset of the loaded attributes
    detector: str | None = None
    min_face: int | None = None
    threshold: float | None = None
    max_faces: int | None = None
    annotate: bool = False
    annotate_format: str = "jpeg"
    min_confidence: float | None = None  # answers below it are labelled "uncertain"


@dataclass(frozen=True, slots=True)
class Analysis:
    name: str
    width: int
    height: int
    faces: tuple[Face, ...]
    detector: str  # the one that ran
    attributes: tuple[str, ...]
    elapsed_ms: float
    annotated: bytes | None = None
    annotated_type: str | None = None


class WorkerPool:
    """`workers` threads and at most `queue_size` waiting jobs; past that callers get 503 at
    once instead of piling up, and a caller waits at most `timeout_s` (504)."""

    def __init__(self, workers: int, queue_size: int):
        self.workers, self.queue_size = workers, queue_size
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="mien-api")
        self._lock = threading.Lock()
        self.in_flight = 0

    def _release(self, _future) -> None:
        with self._lock:
            self.in_flight -= 1

    async def run(self, timeout_s: float, fn, *args):
        with self._lock:
            if self.in_flight >= self.workers + self.queue_size:
                raise ApiError(503, "busy", f"all {self.workers} workers are busy and "
                               f"{self.queue_size} requests are waiting; retry in a moment")
            self.in_flight += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._release)  # also when cancelled while still queued
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            raise ApiError(504, "timeout", f"analysis took longer than {timeout_s:g} s; send a "
                           "smaller image or retry when the server is less busy") from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Service:
    """Loads the models on first use (or at startup) and analyses uploads in worker threads."""

    def __init__(self, settings: Settings, classifiers: Mapping | None = None):
        self.settings = settings
        self._given = dict(classifiers) if classifiers is not None else None
        self.classifiers: dict = {}
        self.default_detector: str = ""
        self._load_detector = None
        self.ready = False
        self._load_lock = threading.Lock()
        self._local = threading.local()
        self.pool = WorkerPool(settings.workers, settings.queue_size)

    # --- models ------------------------------------------------------------------------------

    def load(self) -> None:
        """Classifiers and the default detector, once; a broken model file fails here."""
        with self._load_lock:
            if self.ready:
                return
            from mien.detection import resolve_detector_name
            from mien.inference.pipeline import load_attributes

            specs = self.settings.attributes
            self.classifiers = (self._given if self._given is not None
                                else load_attributes(list(specs) if specs is not None else None))
            # The detector that runs: a fallback is announced once on stderr and named here.
            self.default_detector = resolve_detector_name(self.settings.detector)
            settings = self.settings
            self._load_detector = self._detector(AnalyzeOptions(
                detector=self.default_detector, min_face=settings.min_face,
                threshold=settings.threshold, max_faces=settings.max_faces))
            self.ready = True

    def _detector(self, options: AnalyzeOptions):
        from mien.detection import create_detector

        cache = getattr(self._local, "detectors", None)
        if cache is None:
            cache = self._local.detectors = OrderedDict()
        key = (options.detector, options.min_face, options.threshold, options.max_faces)
        if key not in cache:
            cache[key] = create_detector(options.detector, min_face=options.min_face,
                                         score_threshold=options.threshold,
                                         max_faces=options.max_faces)
            if len(cache) > DETECTORS_PER_THREAD:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return cache[key]

    def resolve(self, options: AnalyzeOptions) -> AnalyzeOptions:
        """Fill the server's defaults in; refuse unknown names and detector options out of
        bounds (422). A known detector that cannot run here is replaced by one that can."""
        from mien.detection import DetectorOptions, list_detectors, resolve_detector_name
        from mien.errors import MienError

        self.load()
        names = options.attributes
        if names is None:
            names = tuple(self.classifiers)
        unknown = [n for n in names if n not in self.classifiers]
        if unknown:
            have = ", ".join(self.classifiers) or "none"
            raise ApiError(422, "unknown_attribute", f"attributes {', '.join(unknown)} are not "
                           f"loaded; choose from: {have}")
        detector = options.detector or self.default_detector
        if detector not in list_detectors():
            raise ApiError(422, "unknown_detector", f"detector {detector!r}: choose one of "
                           f"{', '.join(list_detectors())}")
        detector = resolve_detector_name(detector)
        if options.annotate_format not in ANNOTATE_FORMATS:
            raise ApiError(422, "invalid_request", f"annotate_format {options.annotate_format!r}: "
                           f"use {' or '.join(ANNOTATE_FORMATS)}")
        settings = self.settings
        resolved = dataclasses.replace(
            options, attributes=tuple(names), detector=detector,
            min_face=options.min_face or settings.min_face,
            threshold=options.threshold if options.threshold is not None else settings.threshold,
            max_faces=options.max_faces or settings.max_faces)
        try:
            DetectorOptions(resolved.min_face, resolved.threshold, max_faces=resolved.max_faces)
        except MienError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        return resolved

    # --- work (in a worker thread) -----------------------------------------------------------

    def _pipeline(self, options: AnalyzeOptions):
        """The library's pipeline (detect, crop with each model's framing, classify) on this
        worker thread's detector: the API analyses photos exactly as `mien analyze` does."""
        from mien.inference.pipeline import Pipeline

        classifiers = {n: self.classifiers[n] for n in options.attributes}
        return Pipeline(self._detector(options), classifiers,
                        min_confidence=options.min_confidence)

    def _decode(self, data: bytes, name: str) -> np.ndarray:
        from mien.data.io import decode_image

        check_pixels(data, name, self.settings.max_pixels)
        return decode_image(data, "rgb", name=name, max_pixels=self.settings.max_pixels)

    def _finish(self, name, image, faces, options, start) -> Analysis:
        annotated = None
        if options.annotate:
            annotated = encode_image(draw(image, faces), options.annotate_format)
        return Analysis(
            name, image.shape[1], image.shape[0], tuple(faces), options.detector,
            options.attributes, (time.perf_counter() - start) * 1000, annotated,
            ANNOTATE_FORMATS[options.annotate_format] if options.annotate else None)

    def analyze(self, data: bytes, name: str, options: AnalyzeOptions) -> Analysis:
        start = time.perf_counter()
        image = self._decode(data, name)
        (faces,) = self._pipeline(options).analyze_many([image])
        return self._finish(name, image, faces, options, start)

    def analyze_many(self, items: Sequence[tuple[str, bytes | ApiError]],
                     options: AnalyzeOptions) -> list[Analysis | ApiError]:
        """Several images; one classifier call over all their faces. A bad image becomes its
        own ApiError in the list instead of failing the others."""
        from mien.api.errors import mien_error_status
        from mien.errors import MienError

        # One request's faces go through the classifiers together. A micro-batcher that pooled
        # faces of concurrent requests was measured and removed: classifying a face is about 2%
        # of a request, so pooling cannot pay for its wait (benchmarks/serve_load.py).
        start = time.perf_counter()
        pipeline = self._pipeline(options)
        prepared: list = []
        for name, data in items:
            if isinstance(data, ApiError):
                prepared.append(data)
                continue
            try:  # a photo that fails to decode or detect fails alone, not the whole batch
                image = self._decode(data, name)
                prepared.append((name, image, pipeline.detect(image)))
            except ApiError as exc:
                prepared.append(exc)
            except MienError as exc:
                prepared.append(ApiError(*mien_error_status(exc), str(exc)))
        ok = [p for p in prepared if not isinstance(p, ApiError)]
        labelled = iter(pipeline.label([p[1] for p in ok], [p[2] for p in ok]))
        return [p if isinstance(p, ApiError)
                else self._finish(p[0], p[1], next(labelled), options, start)
                for p in prepared]

    async def run(self, fn, *args):
        return await self.pool.run(self.settings.timeout_s, fn, *args)

    def close(self) -> None:
        self.pool.close()


def draw(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    from mien.inference.draw import draw_faces

    return draw_faces(image, faces)


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(rgb).save(buffer, "PNG", compress_level=3)
    else:
        Image.fromarray(rgb).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()
