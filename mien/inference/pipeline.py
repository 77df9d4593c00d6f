"""Detect, crop, classify: the analysis pipeline behind `mien.analyze` and `mien analyze`.

`Pipeline.analyze(image)` answers for one picture. `Pipeline.run(inputs)` streams rows for many
pictures and videos: photos are shared with worker processes, a video's frames are decoded,
detected and classified on overlapped threads, and the face crops of many frames go through
each classifier in one batch. Each classifier reads faces cut the way its model was trained
(`framing`), so a face is cropped once per distinct framing."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from mien.data.io import convert_color, decode_image, from_pil
from mien.data.preprocess import Framing, Preprocess
from mien.deadline import Deadline
from mien.errors import MienError
from mien.inference.align import crop_face
from mien.inference.sources import Frame, Prefetcher, expand_inputs, is_still_file, iter_frames
from mien.inference.tracking import IoUTracker, ProbabilitySmoother
from mien.inference.workers import CHUNK as WORKER_CHUNK
from mien.inference.workers import Workers, can_fork, chunked
from mien.types import UNCERTAIN, Face, Prediction

BUNDLED_ATTRIBUTES = ("expression", "smile", "glasses")
MAX_PENDING_FRAMES = 32  # decoded frames held for one classifier batch: ~200 MB at 1080p
Status = Literal["ok", "small", "no_face", "error"]  # small: a face too small to judge
# Faces narrower (or lower) than this many pixels get a row with their box and no attributes:
# shrunk to 12 px the bundled models fall to 0.46 (expression, 0.65 at full size) and 0.76
# balanced (glasses, 0.97); at 16 px they keep 0.55 and 0.87, smile 0.92 of 0.95
# (benchmarks/small_faces.py, benchmarks/results/small_faces.json).
MIN_JUDGED_FACE = 16
# Most faces per classifier call, and between two looks at the deadline while cropping or
# classifying. ONNX Runtime keeps each session's memory arena as large as its largest call,
# so a photo with hundreds of boxes left the classifiers holding several times more at 256 a
# call than at 32; a face costs the same at batch 8 and 32
# (benchmarks/results/serve_load.json, classifier_batching_ms_per_face).
CHUNK_FACES = 32


class Classifier(Protocol):
    """What the pipeline needs of a classifier (`mien.models.loading.load_classifier` gives one)."""

    name: str
    labels: tuple[str, ...]
    preprocess: Preprocess

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Row:
    """One output row: a face, or a frame without faces (`no_face`), or an unreadable input."""

    source: str
    frame: int
    timestamp: float | None
    status: Status
    face_index: int | None = None
    face: Face | None = None
    message: str | None = None
    detector: str | None = None  # the detector that ran (None: the input was unreadable)


@dataclass
class PipelineStats:
    """Counters and seconds spent per stage since the pipeline was built."""

    frames: int = 0
    faces: int = 0
    errors: int = 0
    decode_s: float = 0.0  # in the background thread, overlapping the rest
    detect_s: float = 0.0
    crop_s: float = 0.0
    classify_s: float = 0.0
    classify_model_s: dict[str, float] = field(default_factory=dict)  # per attribute

    def add(self, other: PipelineStats) -> None:
        """Counts and seconds of `other` (a worker process's) added to these."""
        for f in dataclasses.fields(self):
            if f.name != "classify_model_s":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        for name, seconds in other.classify_model_s.items():
            self.classify_model_s[name] = self.classify_model_s.get(name, 0.0) + seconds


# ONNX Runtime threads of the YuNet detector and of each classifier a Pipeline loads itself
ANALYSIS_THREADS = 1


def load_attributes(specs: Iterable[str] | None = None, threads: int | None = None
                    ) -> dict[str, Classifier]:
    """Classifiers by attribute name. Each spec is a bundled name (`smile`) or `name=model`
    with `model` a bundled name, run folder, .safetensors or .onnx file. None: every bundled
    attribute that is installed. `threads`: ONNX Runtime threads per network (None: one per
    core)."""
    try:
        from mien.models.loading import bundled_models, load_classifier
    except ImportError as exc:
        raise MienError(f"classifier loading is unavailable ({exc}); reinstall mien") from exc

    def load(spec: str) -> Classifier:
        classifier = load_classifier(spec)
        with_threads = getattr(classifier, "with_threads", None)  # ONNX networks
        return classifier if with_threads is None else with_threads(threads)

    if specs is None:
        installed = set(bundled_models())
        return {n: load(n) for n in BUNDLED_ATTRIBUTES if n in installed}
    out: dict[str, Classifier] = {}
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        name, _, model = spec.partition("=")
        name = name.strip()
        if not name or name in out:
            problem = "has no attribute name" if not name else "repeats an attribute name"
            raise MienError(f"attribute spec {spec!r} {problem}; use name or name=MODEL, once each")
        out[name] = load(model.strip() or name)
    return out


def check_min_confidence(min_confidence: float | None) -> float | None:
    """`min_confidence` when it is None or a probability; MienError otherwise."""
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise MienError(f"min_confidence {min_confidence}: use a probability in [0, 1]")
    return min_confidence


def judge(prediction: Prediction, min_confidence: float | None) -> Prediction:
    """`prediction`, labelled `uncertain` when its top probability is below `min_confidence`;
    its score and every class probability are kept."""
    if min_confidence is None or prediction.score >= min_confidence:
        return prediction
    return dataclasses.replace(prediction, label=UNCERTAIN)


class _Inline:
    """A Prefetcher's face for an iterator run on the caller's thread (`Pipeline(threads=1)`)."""

    def __init__(self, iterator: Iterator):
        self._iterator = iterator

    def __iter__(self):
        return self._iterator

    def close(self) -> None:
        self._iterator.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def small_message(face: Face, limit: int = MIN_JUDGED_FACE) -> str:
    """The row message of a face too small to judge (under `limit` px)."""
    side = min(face.box.width, face.box.height)
    return (f"face {side:.0f} px: too small to judge its attributes (they need {limit} px "
            "or more); its box is given")


def framing_of(classifier) -> Framing:
    """How faces are cut for `classifier`: its model's framing, else the one every model had
    before framing was recorded."""
    return getattr(classifier, "framing", None) or Framing()


def classify(
    attributes: Mapping[str, Classifier], framings: Mapping[str, Framing],
    crops: Mapping[Framing, Sequence[np.ndarray]] | Sequence[np.ndarray],
    min_confidence: float | None = None, check: Callable[[str], None] | None = None,
    seconds: dict[str, float] | None = None,
) -> list[dict[str, Prediction]]:
    """Every attribute for each face, in calls of at most CHUNK_FACES faces per classifier:
    `Pipeline.classify`, for classifiers held without a detector (a worker that only
    classifies). `framings`: how each attribute's faces are cut; `crops`: the faces per framing,
    or one list every attribute reads; `check(what)` before each call (a deadline's);
    `seconds`: each attribute's time is added to it."""
    if isinstance(crops, Mapping):
        n = len(next(iter(crops.values()), ()))
    else:
        n, crops = len(crops), {framing: crops for framing in framings.values()}
    out: list[dict[str, Prediction]] = [{} for _ in range(n)]
    for first in range(0, n, CHUNK_FACES):
        if check is not None:
            check("classifying faces")
        part = slice(first, min(first + CHUNK_FACES, n))
        for name, classifier in attributes.items():
            start = time.perf_counter()
            probs = np.asarray(classifier.predict_proba(list(crops[framings[name]][part])),
                               np.float64)
            if seconds is not None:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            labels = tuple(classifier.labels)
            if probs.shape != (part.stop - first, len(labels)):
                raise MienError(
                    f"classifier {name!r} returned shape {probs.shape} for "
                    f"{part.stop - first} faces and {len(labels)} labels; check the model file"
                )
            best = probs.argmax(axis=1)
            for i, row in enumerate(probs):
                out[first + i][name] = judge(Prediction(
                    labels[best[i]],
                    float(row[best[i]]),
                    {k: float(p) for k, p in zip(labels, row, strict=True)},
                ), min_confidence)
    return out


def _joined(parts: Iterable[Mapping[Framing, list[np.ndarray]]]) -> dict[Framing, list]:
    """Crops of several pictures, per framing, in picture order."""
    out: dict[Framing, list[np.ndarray]] = {}
    for part in parts:
        for framing, crops in part.items():
            out.setdefault(framing, []).extend(crops)
    return out


def _as_image(image) -> np.ndarray:
    """uint8 RGB pixels of a picture given as a uint8 array (gray, RGB or RGBA), a PIL image,
    encoded bytes or a path; MienError for anything else."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise MienError(f"image of dtype {image.dtype}: pass uint8 RGB pixels")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise MienError(f"image of shape {image.shape}: pass (H, W, 3) RGB or (H, W) gray")
        return convert_color(image, "rgb")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image), "rgb", name="<bytes>")
    if isinstance(image, (str, os.PathLike)):
        return decode_image(image, "rgb", name=os.fspath(image))
    from PIL import Image

    if isinstance(image, Image.Image):
        return from_pil(image, "rgb")
    raise MienError(f"image of type {type(image).__name__}: pass a path, encoded bytes, a PIL "
                    "image or a uint8 RGB array")


class Pipeline:
    """detector + {attribute name: classifier}.

    detector: a Detector, a registered name, or None for the default (YuNet). A name that cannot
    run here is replaced as `create_detector` says; `detector.name` is the one that runs.
    detector_options: `create_detector` options (min_face, score_threshold, max_faces, ...).
    attributes: {name: Classifier}, a list of specs for `load_attributes`, or None for every
    installed bundled attribute ({} detects only).
    smoothing: EMA weight of the newest frame for video tracks (None: raw per-frame answers).
    landmarks: "mtcnn" replaces the detector's landmarks with MTCNN O-Net's, which follow head
    roll, so crops of tilted faces come out upright (YuNet's own barely tilt).
    min_confidence: an answer whose top probability is below it is labelled `uncertain`
    (None: every answer is its most probable class).
    deadline: when set, work stops with DeadlineExceeded once it passes, checked before each
    picture's detection (and each tile of YuNet's fine view) and each `CHUNK_FACES` faces
    cropped or classified.
    margin, align: None crops each attribute's faces with its own model's framing; a value
    overrides that for every attribute (`framings` holds the result per attribute).
    min_judged_face: faces whose box is smaller (px, either side) are marked `small` and get
    no attributes (0: judge every face).
    threads: 1 runs decoding, detection and classification in turn on the caller's thread; 2 or
    more (default: the machine's cores) use that many cores: `run` shares still photos with
    `threads - 1` worker processes (where fork is available), and overlaps the stages of
    videos and cameras on threads of their own (each network runs on one ONNX Runtime thread
    either way).
    """

    def __init__(
        self,
        detector=None,
        attributes: Mapping[str, Classifier] | Sequence[str] | None = None,
        *,
        batch_size: int = 64,
        margin: float | None = None,
        align: bool | None = None,
        smoothing: float | None = None,
        track_iou: float = 0.3,
        prefetch: int = 8,
        detector_options: Mapping | None = None,
        landmarks: str | None = None,
        min_confidence: float | None = None,
        min_judged_face: int = MIN_JUDGED_FACE,
        threads: int | None = None,
        deadline: Deadline | None = None,
    ):
        if threads is not None and threads < 1:
            raise MienError(f"threads={threads}: use 1 or more")
        self.threads = threads or os.cpu_count() or 1
        self.min_confidence = check_min_confidence(min_confidence)
        if min_judged_face < 0:
            raise MienError(f"min_judged_face={min_judged_face}: use 0 or more pixels")
        self.min_judged_face = min_judged_face
        self.deadline = deadline
        if detector is None or isinstance(detector, str):
            from mien.detection import create_detector, default_detector_name

            options = dict(detector_options or {})
            if (detector or default_detector_name()) == "yunet":
                # detection runs beside classification (run_frames): one core each
                options.setdefault("threads", ANALYSIS_THREADS)
            detector = create_detector(detector, **options)
        self.detector = detector
        self.landmarks = None
        if landmarks == "mtcnn":
            from mien.detection.mtcnn import MTCNNLandmarks

            self.landmarks = MTCNNLandmarks()
        elif landmarks not in (None, "detector"):
            raise MienError(f"landmarks {landmarks!r}: use 'detector' or 'mtcnn'")
        if attributes is None or not isinstance(attributes, Mapping):
            # One thread per network: classification runs beside detection (run_frames), and
            # each owning a core beats both sharing two (benchmarks/analyze.py: 298 against
            # 233 photos/s). Classifiers passed in keep their own sessions.
            attributes = load_attributes(attributes, threads=ANALYSIS_THREADS)
        self.attributes: dict[str, Classifier] = dict(attributes)
        if batch_size < 1:
            raise MienError(f"batch_size={batch_size}: use 1 or more")
        self.batch_size = batch_size
        if margin is not None and margin < 0:
            raise MienError(f"margin={margin}: use 0 or more (a fraction of the face box)")
        self.margin = margin
        self.align = align
        self.framings: dict[str, Framing] = {
            name: self._overridden(framing_of(c)) for name, c in self.attributes.items()
        }
        self.smoothing = smoothing
        self.track_iou = track_iou
        self.prefetch = prefetch
        self.stats = PipelineStats()

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(c.labels) for name, c in self.attributes.items()}

    # --- single pictures -------------------------------------------------------------------

    def analyze(self, image_or_path) -> list[Face]:
        """Faces in one picture (uint8 RGB array, PIL image, path or encoded bytes), best score
        first, each with `attributes` filled."""
        return self.analyze_many([image_or_path])[0]

    def analyze_many(self, images: Sequence) -> list[list[Face]]:
        """Faces of each picture, as `analyze` gives them, with one call per classifier for the
        faces of all of them. Pictures given as paths or bytes are decoded one at a time and
        only their face crops kept, so a batch holds one decoded picture at once."""
        found, crops = [], []
        for item in images:
            image = _as_image(item)
            faces = self.detect(image)
            found.append(faces)
            crops.append(self.crops(image, faces))
            del image  # before the next one is decoded
        return self.label_crops(crops, found)

    def label(self, images: Sequence[np.ndarray], found: Sequence[Sequence[Face]]
              ) -> list[list[Face]]:
        """`found[i]`, the faces detected in `images[i]`, with `attributes` filled: cropped per
        framing and classified with one call per classifier for all of them."""
        found = [self.mark_small(faces) for faces in found]
        return self.label_crops(
            [self.crops(im, faces) for im, faces in zip(images, found, strict=True)], found)

    def label_crops(self, crops: Sequence[Mapping[Framing, Sequence[np.ndarray]]],
                    found: Sequence[Sequence[Face]]) -> list[list[Face]]:
        """Like `label`, from the crops `crops` cut of each picture (faces marked small have
        none): the pictures themselves may be gone."""
        predictions = iter(self._predict(_joined(crops),
                                         sum(not f.small for fs in found for f in fs)))
        return [[f if f.small else dataclasses.replace(f, attributes=next(predictions))
                 for f in faces] for faces in found]

    def classify(
        self, crops: Mapping[Framing, Sequence[np.ndarray]] | Sequence[np.ndarray]
    ) -> list[dict[str, Prediction]]:
        """Every attribute for each face, in calls of at most CHUNK_FACES faces per classifier
        (the deadline looked at before each). `crops`: the faces per framing, as `crops` cuts
        them, or one list of crops that every attribute reads."""
        start = time.perf_counter()
        out = classify(self.attributes, self.framings, crops, self.min_confidence,
                       check=self._check, seconds=self.stats.classify_model_s)
        self.stats.classify_s += time.perf_counter() - start
        return out

    def _predict(self, crops: Mapping[Framing, Sequence[np.ndarray]], n: int) -> list[dict]:
        return self.classify(crops) if self.attributes else [{} for _ in range(n)]

    def detect(self, image: np.ndarray) -> list[Face]:
        """The detector's faces in a uint8 RGB image (landmarks refined when asked)."""
        self._check("detecting faces")
        start = time.perf_counter()
        # A detector that works in parts (YuNet's tiles) checks the deadline between them.
        with self.deadline.current() if self.deadline else contextlib.nullcontext():
            faces = self.detector.detect(image)
            if self.landmarks is not None:
                faces = self.landmarks(image, faces)
        self.stats.detect_s += time.perf_counter() - start
        return self.mark_small(faces)

    def mark_small(self, faces: Sequence[Face]) -> list[Face]:
        """`faces`, those under `min_judged_face` px marked `small` (they will not be judged)."""
        limit = self.min_judged_face
        return [dataclasses.replace(f, small=True)
                if not f.small and min(f.box.width, f.box.height) < limit else f for f in faces]

    def crop(self, image: np.ndarray, faces: Sequence[Face], framing: Framing) -> list[np.ndarray]:
        """`faces` cut from `image` with `framing`: what a classifier of that framing reads."""
        start = time.perf_counter()
        crops = []
        for i, face in enumerate(faces):
            if i % CHUNK_FACES == 0:
                self._check("cropping faces")
            crops.append(crop_face(image, face, framing.margin, align=framing.align))
        self.stats.crop_s += time.perf_counter() - start
        return crops

    def _check(self, before: str) -> None:
        if self.deadline is not None:
            self.deadline.check(before)

    def crops(self, image: np.ndarray, faces: Sequence[Face]) -> dict[Framing, list[np.ndarray]]:
        """`faces` cut once per distinct framing of the attributes, those marked `small` left
        out (they are not judged)."""
        judged = [f for f in faces if not f.small]
        return {fr: self.crop(image, judged, fr) for fr in dict.fromkeys(self.framings.values())}

    def _overridden(self, framing: Framing) -> Framing:
        """`framing` with this pipeline's `margin` / `align`, where given."""
        return Framing(framing.margin if self.margin is None else self.margin,
                       framing.align if self.align is None else self.align)

    @property
    def crop_framing(self) -> Framing:
        """How to cut a face when one crop must do for every attribute (saved crops, a
        training set): the first attribute's framing, else the default one."""
        return next(iter(self.framings.values()), self._overridden(Framing()))

    def largest_face(self, image: np.ndarray, framing: Framing | None = None
                     ) -> tuple[Face, np.ndarray] | None:
        """The largest face detected in a photo and its crop (`framing`, else `crop_framing`);
        None without a face. One face per photo is how `mien evaluate --detect` scores whole
        photos and how `mien data crop` cuts a training set."""
        faces = self.detect(image)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.box.area)
        return face, self.crop(image, [face], framing or self.crop_framing)[0]

    # --- streams ---------------------------------------------------------------------------

    def run(self, inputs: Iterable[str | os.PathLike], **source_options) -> Iterator[Row]:
        """Rows for every face of every frame of `inputs` (see `iter_frames` for options)."""
        for _, rows in self.run_frames(inputs, images=False, **source_options):
            yield from rows

    def dataframe(self, inputs: Iterable[str | os.PathLike], **source_options):
        """`run`'s rows as a pandas DataFrame with the columns of `mien analyze`'s CSV (needs
        `pip install 'mien[pandas]'`)."""
        from mien.inference.writers import to_dataframe

        return to_dataframe(self.run(inputs, **source_options), self.labels)

    def run_frames(
        self, inputs: Iterable[str | os.PathLike] | Iterable[Frame], *, images: bool = True,
        **source_options
    ) -> Iterator[tuple[Frame, list[Row]]]:
        """Like `run`, grouped per frame with the frame itself (for drawing or display).
        `inputs` may also be an iterable of `Frame`s, e.g. from your own source. With
        `threads` of 2 or more, still photos are shared with worker processes (see
        `mien.inference.workers`); `images=False` lets their frames come back without pixels
        (`image` None) when only the rows are wanted."""
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]
        items = iter(inputs)
        first = next(items, None)
        if first is None:
            return
        items = itertools.chain([first], items)
        if (isinstance(first, Frame) or self.threads == 1 or self.deadline is not None
                or not self._fork_safe()):
            yield from self._frames_here(items, self.threads > 1, **source_options)
        else:
            yield from self._frames_shared(items, images, **source_options)

    def _fork_safe(self) -> bool:
        """Whether worker processes forked from here can run the detector and every
        classifier: each must say so (`fork_safe`), as a thread pool is not forked with the
        network that uses it; one that does not say keeps the work on threads here."""
        parts = [self.detector, *self.attributes.values()]
        if self.landmarks is not None:
            parts.append(self.landmarks)
        return can_fork() and all(getattr(p, "fork_safe", False) for p in parts)

    def _frames_shared(self, items: Iterator, images: bool, glob: str | None = None,
                       **stream_options) -> Iterator[tuple[Frame, list[Row]]]:
        """`run_frames` with `threads - 1` worker processes: runs of still photos are shared
        out by chunks, videos, cameras, stdin and URIs run here with overlapped stages."""
        workers = None
        try:
            for still, group in itertools.groupby(expand_inputs(items, glob), key=is_still_file):
                if not still:
                    yield from self._frames_here(group, True, **stream_options)
                    continue
                chunks = chunked(group, WORKER_CHUNK)
                head = list(itertools.islice(chunks, 2))
                if len(head) < 2:  # a few photos: not worth a process
                    yield from self._frames_here(head[0], True)
                    continue
                if workers is None:
                    workers = Workers(self, self.threads - 1, images)
                yield from workers.run(itertools.chain(head, chunks),
                                       lambda paths: self._frames_here(paths, False))
        finally:
            if workers is not None:
                workers.close()

    def _frames_here(self, items: Iterable, threaded: bool, **source_options
                     ) -> Iterator[tuple[Frame, list[Row]]]:
        """`run_frames` in this process: stages overlapped on threads, or in turn."""
        items = iter(items)
        first = next(items, None)
        if first is None:
            return
        items = itertools.chain([first], items)
        decoder = None
        if isinstance(first, Frame):
            frames = items
        else:
            frames = iter_frames(items, **source_options)
            if not threaded:
                frames = self._timed_decoding(frames)
            elif self.prefetch > 1:
                # Decoding runs in a thread of its own, ahead of detection: three stages on two
                # cores keep both busy where two stages left one waiting on the slower half.
                frames = decoder = Prefetcher(frames, self.prefetch)
        trackers: dict[str, IoUTracker] = {}
        smoothers: dict[str, ProbabilitySmoother] = {}
        pending: list[tuple[Frame, list[Face], dict[Framing, list[np.ndarray]]]] = []
        # Decoding, detection and cropping run in the background thread, a few frames ahead of
        # classification here: the two halves of the work use both cores (ONNX Runtime and
        # OpenCV release the GIL).
        before = self.stats.detect_s + self.stats.crop_s
        detected = self._detected(frames)
        with Prefetcher(detected, self.prefetch) if threaded else _Inline(detected) as prefetched:
            try:
                for item in prefetched:
                    pending.append(item)
                    n_faces = sum(len(f) for _, f, _ in pending)
                    # Flush when a batch is full, when nothing more is detected yet (on one
                    # thread: every `prefetch` frames; a live camera should not wait for a full
                    # batch), or when enough whole frames wait in memory (long videos, few faces).
                    if (
                        n_faces >= self.batch_size
                        or len(pending) >= MAX_PENDING_FRAMES
                        or (prefetched.ready() == 0 if threaded
                            else len(pending) >= max(1, self.prefetch))
                    ):
                        yield from self._flush(pending, trackers, smoothers)
                        pending = []
                yield from self._flush(pending, trackers, smoothers)
            finally:
                prefetched.close()  # the producer stops before its time is read
                if decoder is not None:
                    decoder.close()
                    self.stats.decode_s += decoder.busy_s
                elif threaded:
                    spent = self.stats.detect_s + self.stats.crop_s - before
                    self.stats.decode_s += max(0.0, prefetched.busy_s - spent)

    def _timed_decoding(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """`frames`, the time taken to make each added to `stats.decode_s` (one thread)."""
        iterator = iter(frames)
        while True:
            start = time.perf_counter()
            frame = next(iterator, None)
            self.stats.decode_s += time.perf_counter() - start
            if frame is None:
                return
            yield frame

    def _detected(self, frames: Iterable[Frame]
                  ) -> Iterator[tuple[Frame, list[Face], dict[Framing, list[np.ndarray]]]]:
        """(frame, its faces, their crops per framing) for each frame, decoded on demand."""
        for frame in frames:
            if frame.image is None:
                yield frame, [], {}
            else:
                faces = self.detect(frame.image)
                yield frame, faces, self.crops(frame.image, faces)

    def _flush(self, pending, trackers, smoothers) -> Iterator[tuple[Frame, list[Row]]]:
        crops = _joined(cs for _, _, cs in pending)
        predictions = iter(self._predict(
            crops, sum(not face.small for _, faces, _ in pending for face in faces)))
        for frame, faces, _ in pending:
            if frame.image is None:
                yield frame, [self.error_row(frame)]
                continue
            faces = [f if f.small else dataclasses.replace(f, attributes=next(predictions))
                     for f in faces]
            yield frame, self.frame_rows(frame, faces, trackers, smoothers)

    def error_row(self, frame: Frame) -> Row:
        """The row of a frame that could not be read."""
        self.stats.frames += 1
        self.stats.errors += 1
        return Row(frame.source, frame.index, frame.timestamp, "error", message=frame.error)

    def frame_rows(self, frame: Frame, faces: Sequence[Face],
                   trackers: dict[str, IoUTracker], smoothers: dict[str, ProbabilitySmoother],
                   detector: str | None = None) -> list[Row]:
        """The rows of a decoded frame whose `faces` carry their attributes (none when marked
        `small`): one per face, with track ids and smoothed answers for a stream's frames
        (`trackers` and `smoothers` hold each source's state, so frames must come in order),
        else one `no_face` row. `detector`: the name the rows give (default: this pipeline's
        detector)."""
        detector = detector or getattr(self.detector, "name", type(self.detector).__name__)
        self.stats.frames += 1
        ids: list[int | None] = [None] * len(faces)
        if frame.stream:
            tracker = trackers.setdefault(frame.source, IoUTracker(self.track_iou))
            ids = tracker.update([f.box for f in faces])
        rows = []
        for i, (face, track_id) in enumerate(zip(faces, ids, strict=True)):
            attrs = {} if face.small else face.attributes
            if self.smoothing and track_id is not None:
                smoother = smoothers.setdefault(frame.source, ProbabilitySmoother(self.smoothing))
                attrs = {k: judge(smoother.update(track_id, k, p), self.min_confidence)
                         for k, p in attrs.items()}
            face = dataclasses.replace(face, attributes=attrs, track_id=track_id)
            rows.append(Row(frame.source, frame.index, frame.timestamp,
                            "small" if face.small else "ok", i, face, detector=detector,
                            message=small_message(face, self.min_judged_face) if face.small
                            else None))
        self.stats.faces += len(faces)
        return rows or [Row(frame.source, frame.index, frame.timestamp, "no_face",
                            detector=detector)]
