"""The work behind the routes: models loaded once per process, a bounded worker pool, and the
analysis of uploaded bytes through the library's pipeline.

What bounds memory: a request holds a place in the pool from before its body is read (503 when
none is free), so at most `workers + queue_size` bodies are in memory; a worker decodes one
image at a time and keeps only its face crops; and all workers together hold at most
`Settings.pixel_budget` decoded pixels, waiting for their share. Work for a request whose time
is up stops between images and stages (`mien.deadline`)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import io
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mien.api.errors import ApiError
from mien.api.settings import Settings
from mien.api.uploads import check_batch_pixels, check_pixels
from mien.deadline import Deadline
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


class Slot:
    """A request's place in the pool, held from admission until its work is done."""

    def __init__(self, pool: WorkerPool):
        self.pool, self.held = pool, True
        self.handed_over = False  # to a worker, which gives it back when done

    def release(self, _future=None) -> None:
        self.pool.release(self, by_worker=_future is not None)


@dataclass(frozen=True, slots=True)
class _Detected:
    """An image's faces and their crops, waiting for the classifiers; the image is gone."""

    name: str
    width: int
    height: int
    faces: list[Face]
    crops: dict


class WorkerPool:
    """`workers` threads and at most `queue_size` requests admitted beyond them; past that
    callers get 503 at once instead of piling up, and a caller waits at most `timeout_s` (504),
    after which its work stops at the next check of its deadline."""

    def __init__(self, workers: int, queue_size: int,
                 on_idle: Callable[[], None] | None = None):
        self.workers, self.queue_size = workers, queue_size
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="mien-api")
        self._lock = threading.Lock()
        self.in_flight = 0  # admitted requests: reading their body, queued or running
        self.on_idle = on_idle or trim_heap  # memory given back when no request came for IDLE_S
        self._idle_timer: threading.Timer | None = None

    def admit(self) -> Slot:
        with self._lock:
            if self.in_flight >= self.workers + self.queue_size:
                raise ApiError(503, "busy", f"all {self.workers} workers are busy and "
                               f"{self.queue_size} requests are waiting; retry in a moment")
            self.in_flight += 1
        return Slot(self)

    def release(self, slot: Slot, by_worker: bool = False) -> None:
        with self._lock:
            if not slot.held:
                return
            slot.held = False
            self.in_flight -= 1
            if self.in_flight == 0 and by_worker:
                # Not at once: a request arriving right after should not wait for it.
                if self._idle_timer is not None:
                    self._idle_timer.cancel()
                self._idle_timer = threading.Timer(IDLE_S, self._when_idle)
                self._idle_timer.daemon = True
                self._idle_timer.start()

    def _when_idle(self) -> None:
        with self._lock:
            if self.in_flight:
                return
        self.on_idle()

    @contextlib.asynccontextmanager
    async def admitted(self):
        """A slot for the body of the `async with`; given back at its end unless `run` took
        it over (then it is given back when the work is done)."""
        slot = self.admit()
        try:
            yield slot
        finally:
            if not slot.handed_over:
                slot.release()

    async def run(self, slot: Slot, timeout_s: float, fn, *args):
        """`fn(*args, deadline)` on a worker thread; the deadline passes `timeout_s` from now,
        or is cancelled when the caller stops waiting."""
        deadline = Deadline(timeout_s)
        future = self._executor.submit(fn, *args, deadline)
        slot.handed_over = True
        future.add_done_callback(slot.release)  # also when cancelled while still queued
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            raise ApiError(504, "timeout", f"analysis took longer than {timeout_s:g} s; send a "
                           "smaller image or retry when the server is less busy") from None
        finally:
            deadline.cancel()  # nobody waits for the answer any more (no-op once it is done)

    def close(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class PixelBudget:
    """Decoded pixels that every worker together may hold; a worker waits until its image fits
    (an image larger than the whole budget waits until it is alone)."""

    def __init__(self, total: int):
        self.total, self.held = total, 0
        self._free = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int, deadline: Deadline) -> Iterator[None]:
        pixels = min(max(pixels, 1), self.total)
        with self._free:
            while self.held + pixels > self.total:
                deadline.check("decoding an image (waiting for memory)")
                # Wakes on a release; the timeout only bounds how late a cancellation is seen.
                self._free.wait(min(deadline.remaining(), 0.5))
            self.held += pixels
        try:
            yield
        finally:
            with self._free:
                self.held -= pixels
                self._free.notify_all()


TRIM_PIXELS = 4_000_000  # after an image this large, give freed memory back (trim_heap)
IDLE_S = 1.0  # after this long with no request, the server gives memory back (release_memory)


@functools.cache
def _malloc_trim():
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    except OSError:  # no C library to open this way (Windows)
        return None


def trim_heap() -> None:
    """Give back to the system what worker threads freed and glibc kept in their arenas
    (after two large images and some photos per worker, ~10 % less RSS stayed)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


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
        self.pool = WorkerPool(settings.workers, settings.queue_size, self.release_memory)
        self.pixels = PixelBudget(settings.pixel_budget)

    def release_memory(self) -> None:
        """What the networks' arenas grew to and the workers freed, given back (the pool calls
        it once no request came for IDLE_S): a server's RSS returns near its size before the
        burst instead of staying at the burst's."""
        for classifier in list(self.classifiers.values()):
            release = getattr(classifier, "release_memory", None)
            if release is not None:
                release()
        yunet = sys.modules.get("mien.detection.yunet")  # only when a YuNet ran here
        if yunet is not None:
            yunet.release_shared_memory()
        trim_heap()

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
        from mien.detection.base import DEFAULT_DETECTOR

        cache = getattr(self._local, "detectors", None)
        if cache is None:
            cache = self._local.detectors = OrderedDict()
        key = (options.detector, options.min_face, options.threshold, options.max_faces)
        if key not in cache:
            fine = self.settings.fine_scale
            extra = ({"fine_scale": fine or None}
                     if fine is not None and (options.detector or DEFAULT_DETECTOR) == "yunet"
                     else {})
            cache[key] = create_detector(options.detector, min_face=options.min_face,
                                         score_threshold=options.threshold,
                                         max_faces=options.max_faces, **extra)
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

    def check_pixels(self, items: list[tuple[str, bytes | ApiError]]
                     ) -> list[tuple[str, bytes | ApiError]]:
        """`items` with each image over the pixel limit as its 413; a request over its total
        is refused whole (413). Header reads only: runs before the request is queued."""
        settings = self.settings
        return check_batch_pixels(items, settings.max_pixels, settings.max_request_pixels)

    # --- work (in a worker thread) -----------------------------------------------------------

    def _pipeline(self, options: AnalyzeOptions, deadline: Deadline):
        """The library's pipeline (detect, crop with each model's framing, classify) on this
        worker thread's detector: the API analyses photos exactly as `mien analyze` does."""
        from mien.inference.pipeline import Pipeline

        classifiers = {n: self.classifiers[n] for n in options.attributes}
        return Pipeline(self._detector(options), classifiers,
                        min_confidence=options.min_confidence, deadline=deadline)

    def analyze(self, data: bytes, name: str, options: AnalyzeOptions,
                deadline: Deadline) -> Analysis:
        [result] = self.analyze_many([(name, data)], options, deadline)
        if isinstance(result, ApiError):
            raise result
        return result

    def analyze_many(self, items: Sequence[tuple[str, bytes | ApiError]],
                     options: AnalyzeOptions, deadline: Deadline) -> list[Analysis | ApiError]:
        """Several images, decoded one at a time; one classifier call over all their faces
        (unless annotated: then each image is labelled and drawn before the next is decoded).
        A bad image becomes its own ApiError in the list instead of failing the others;
        a passed deadline fails them all."""
        from mien.api.errors import mien_error_status
        from mien.errors import DeadlineExceeded, MienError

        # One request's faces go through the classifiers together. A micro-batcher that pooled
        # faces of concurrent requests was measured and removed: it cannot save more than the
        # classifiers' share of a request (benchmarks/serve_load.py) and adds its wait to all.
        start = time.perf_counter()
        pipeline = self._pipeline(options, deadline)
        out: list[Analysis | ApiError | None] = []
        waiting: list[tuple[int, _Detected]] = []  # (place in out, detected) to classify
        for name, data in items:
            if isinstance(data, ApiError):
                out.append(data)
                continue
            deadline.check("decoding the next image")
            try:  # a photo that fails to decode or detect fails alone, not the whole batch
                detected = self._detect(pipeline, name, data, options, deadline, start)
            except ApiError as exc:
                out.append(exc)
                continue
            except DeadlineExceeded:
                raise
            except MienError as exc:
                out.append(ApiError(*mien_error_status(exc), str(exc)))
                continue
            if isinstance(detected, Analysis):
                out.append(detected)
            else:
                waiting.append((len(out), detected))
                out.append(None)
        labelled = pipeline.label_crops([d.crops for _, d in waiting],
                                        [d.faces for _, d in waiting])
        for (i, d), faces in zip(waiting, labelled, strict=True):
            out[i] = Analysis(d.name, d.width, d.height, tuple(faces), options.detector,
                              options.attributes, (time.perf_counter() - start) * 1000)
        return out

    def _detect(self, pipeline, name: str, data: bytes, options: AnalyzeOptions,
                deadline: Deadline, start: float) -> _Detected | Analysis:
        """One image decoded, its faces detected and cropped, and the image let go: only
        the crops (or, when annotated, the finished answer) leave here."""
        w, h = check_pixels(data, name, self.settings.max_pixels)
        try:
            with self.pixels.hold(w * h, deadline):
                return self._detect_decoded(pipeline, name, data, options, start)
        finally:  # the image is gone by now
            if w * h >= TRIM_PIXELS:
                trim_heap()

    def _detect_decoded(self, pipeline, name, data, options, start) -> _Detected | Analysis:
        from mien.data.io import decode_image

        image = decode_image(data, "rgb", name=name, max_pixels=self.settings.max_pixels)
        faces = pipeline.detect(image)
        crops = pipeline.crops(image, faces)
        if not options.annotate:
            return _Detected(name, image.shape[1], image.shape[0], faces, crops)
        [faces] = pipeline.label_crops([crops], [faces])
        return Analysis(
            name, image.shape[1], image.shape[0], tuple(faces), options.detector,
            options.attributes, (time.perf_counter() - start) * 1000,
            encode_image(draw(image, faces), options.annotate_format),
            ANNOTATE_FORMATS[options.annotate_format])

    async def run(self, slot: Slot, fn, *args):
        return await self.pool.run(slot, self.settings.timeout_s, fn, *args)

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
