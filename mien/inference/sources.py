"""One frame source for everything the pipeline reads: image files, folders, video files, a
camera, stdin and fsspec URIs (`s3://bucket/photos/`, `memory://...`). Frames stream one at a
time, so memory stays bounded on long videos, and a file that cannot be read becomes an error
frame instead of stopping the batch. A video can also be read in frame ranges (`video_ranges`,
`video_frames(start=, stop=)`) that together give exactly its frames, for workers side by side."""

from __future__ import annotations

import math
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mien.data.io import IMAGE_SUFFIXES, decode_image
from mien.errors import MienError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)
STDIN = "-"
# Containers that estimate their frame count from duration x fps can be one frame off.
FRAME_COUNT_SLACK = 1
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture, or the reason it could not be read (`image is None`)."""

    source: str  # a file path, "camera:N" or "-"
    index: int  # frame number within the source; 0 for a still image
    timestamp: float | None  # seconds since the start of a video or camera; None for stills
    image: np.ndarray | None = field(repr=False, default=None)
    error: str | None = None
    stream: bool = False  # one of a sequence of frames (video, camera): faces get track ids


def is_video_path(path: str | os.PathLike) -> bool:
    # os.path, not pathlib: called for every photo, and building a Path is Python work that
    # holds the GIL the other stages of an overlapped analyze wait for
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_SUFFIXES


def is_still_file(source: str) -> bool:
    """A local picture file among `expand_inputs`' sources (not a video, URI, stdin or camera):
    one frame, no order to keep with any other."""
    return (os.path.splitext(source)[1].lower() in IMAGE_SUFFIXES and source != STDIN
            and not source.startswith("camera:") and not is_uri(source))


def camera_source(index: int) -> str:
    return f"camera:{index}"


def is_uri(source: str) -> bool:
    """`scheme://...`: read through fsspec (`file://`, `s3://`, `gs://`, `memory://`, ...)."""
    return bool(URI_SCHEME.match(source))


def _fsspec():
    from mien.errors import require

    return require("fsspec", "ray")


def _expand_uri(uri: str, glob: str | None) -> Iterator[str]:
    """A URI, or the image and video files under it when it names a folder (sorted)."""
    import fnmatch

    fs, root = _fsspec().core.url_to_fs(uri)
    try:
        is_dir = fs.isdir(root)
    except OSError as exc:
        raise MienError(f"{uri}: cannot list it ({exc}); check the URI and its credentials"
                        ) from exc
    if not is_dir:
        yield uri
        return
    found = False
    for name in sorted(fs.find(root)):
        base = name.rsplit("/", 1)[-1]
        if (Path(base).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
                and fnmatch.fnmatch(base, glob or "*")):
            found = True
            yield fs.unstrip_protocol(name)
    if not found:
        pattern = f" matching {glob!r}" if glob else ""
        raise MienError(f"{uri}: no image or video files{pattern}; check the folder or --glob")


def _read_uri(uri: str) -> bytes:
    try:
        with _fsspec().open(uri, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise MienError(f"{uri}: file not found; check the path") from exc
    except OSError as exc:
        raise MienError(f"{uri}: cannot read it ({exc}); check the URI and its credentials"
                        ) from exc


def expand_inputs(inputs: Iterable[str | os.PathLike], glob: str | None = None) -> Iterator[str]:
    """Files, folders (searched recursively; `glob` filters by name, e.g. '*.jpg'), "-",
    "camera:N" and URIs (folders under them searched too), in a stable order. Missing paths are
    passed on so they become error rows."""
    for item in inputs:
        text = str(item)
        if text == STDIN or text.startswith("camera:"):
            yield text
            continue
        if is_uri(text):
            yield from _expand_uri(text, glob)
            continue
        if not os.path.isdir(text):
            yield text
            continue
        path = Path(text)
        found = False
        for child in sorted(path.rglob(glob or "*")):
            if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                found = True
                yield str(child)
        if not found:
            pattern = f" matching {glob!r}" if glob else ""
            raise MienError(f"{path}: no image or video files{pattern}; check the folder or --glob")


def iter_frames(
    inputs: Iterable[str | os.PathLike],
    *,
    glob: str | None = None,
    every: int = 1,
    fps: float | None = None,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Frames from every input in order. For videos and cameras keep every `every`-th frame,
    or about `fps` frames per second of video when `fps` is given; `max_frames` caps each
    stream (a camera otherwise runs until it stops delivering frames)."""
    if every < 1:
        raise MienError(f"--every {every}: use 1 or more")
    if fps is not None and fps <= 0:
        raise MienError(f"--fps {fps}: use a positive number of frames per second")
    for source in expand_inputs(inputs, glob):
        yield from source_frames(source, every=every, fps=fps, max_frames=max_frames)


def source_frames(source: str, *, every: int = 1, fps: float | None = None,
                  max_frames: int | None = None) -> Iterator[Frame]:
    """The frames of one input as `expand_inputs` gives it (a file, URI, "-" or camera)."""
    if source == STDIN:
        yield _read_stdin()
    elif source.startswith("camera:"):
        yield from _camera_frames(source, every, fps, max_frames)
    elif is_video_path(source) and is_uri(source):
        yield from _uri_video_frames(source, every=every, fps=fps, max_frames=max_frames)
    elif is_video_path(source):
        yield from video_frames(source, every=every, fps=fps, max_frames=max_frames)
    else:
        yield image_frame(source)


def expected_frames(
    inputs: Iterable[str | os.PathLike],
    *,
    glob: str | None = None,
    every: int = 1,
    fps: float | None = None,
    max_frames: int | None = None,
) -> int | None:
    """About how many frames `iter_frames` yields for the same arguments (a progress bar's
    total): a video counts by its container's frame count, which some files get slightly
    wrong. None when a camera or stdin is among the inputs."""
    total = 0
    for source in expand_inputs(inputs, glob):
        if source == STDIN or source.startswith("camera:"):
            return None
        if is_uri(source) and is_video_path(source):
            total += 1  # counting would download it
            continue
        total += _kept_frames(source, every, fps, max_frames) if is_video_path(source) else 1
    return total


def _header(path: str) -> tuple[int, float]:
    """(frames, frames per second) as a video's container announces them; 0 where unknown."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if capture.isOpened() else 0
        native = capture.get(cv2.CAP_PROP_FPS) or 0.0
    finally:
        capture.release()
    return count, native


def _kept_frames(path: str, every: int, fps: float | None, max_frames: int | None) -> int:
    count, native = _header(path)
    if count <= 0:
        return 1  # an error frame, or a stream that does not say
    if fps is not None and native > 0:
        kept = min(count, math.ceil(count * fps / native))
    else:
        kept = math.ceil(count / every)
    return kept if max_frames is None else min(kept, max_frames)


def image_frame(path: str) -> Frame:
    try:
        data = _read_uri(path) if is_uri(path) else path
        return Frame(path, 0, None, decode_image(data, "rgb", name=path))
    except MienError as exc:
        return Frame(path, 0, None, None, str(exc))


def _uri_video_frames(uri: str, **options) -> Iterator[Frame]:
    """A video behind a URI, copied to a local temporary file for OpenCV."""
    import dataclasses
    import tempfile

    try:
        data = _read_uri(uri)
    except MienError as exc:
        yield Frame(uri, 0, None, None, str(exc))
        return
    with tempfile.TemporaryDirectory(prefix="mien-video-") as folder:
        local = os.path.join(folder, "video" + Path(uri).suffix)
        with open(local, "wb") as fh:
            fh.write(data)
        for frame in video_frames(local, **options):
            message = frame.error and frame.error.replace(local, uri)
            yield dataclasses.replace(frame, source=uri, error=message)


def _read_stdin() -> Frame:
    data = sys.stdin.buffer.read()
    if not data:
        return Frame(STDIN, 0, None, None, "<stdin>: no bytes on standard input; pipe an image in")
    try:
        return Frame(STDIN, 0, None, decode_image(data, "rgb", name="<stdin>"))
    except MienError as exc:
        return Frame(STDIN, 0, None, None, str(exc))


class _Sampler:
    """Decides which frame numbers to keep: every n-th, or the first frame of each 1/fps slot."""

    def __init__(self, every: int, fps: float | None, native_fps: float):
        self.every, self.fps, self.native = every, fps, native_fps if native_fps > 0 else 0.0
        self.next_time = 0.0

    def keep(self, index: int, timestamp: float) -> bool:
        if self.fps is None:
            return index % self.every == 0
        if timestamp + 1e-6 >= self.next_time:
            self.next_time += 1.0 / self.fps
            # A long gap (dropped frames) must not make us keep a burst of catch-up frames.
            self.next_time = max(self.next_time, timestamp + 0.5 / self.fps)
            return True
        return False


def video_ranges(path: str, *, every: int = 1, fps: float | None = None,
                 max_frames: int | None = None, frames: int = 256
                 ) -> list[tuple[int, int | None]]:
    """Frame-number ranges [start, stop) that `video_frames(path, start=, stop=)` decodes side by
    side into exactly the frames of one pass, about `frames` kept frames each. The last range is
    open (stop None): containers can announce fewer frames than they hold. [(0, None)] when the
    file cannot be split: unreadable, a URI, or no frame count or rate in its header."""
    if frames < 1:
        raise MienError(f"frames per range {frames}: use 1 or more")
    if is_uri(path):
        return [(0, None)]
    count, native = _header(path)
    if count <= 0 or native <= 0:
        return [(0, None)]
    sampler = _Sampler(every, fps, native)
    kept = [i for i in range(count) if sampler.keep(i, i / native)][:max_frames]
    starts = [0, *kept[frames::frames]]
    return [*zip(starts[:-1], starts[1:], strict=True), (starts[-1], None)]


def _seek(capture, path: str, target: int):
    """`capture`, or a reopened one, whose next grab reads frame `target`. OpenCV's seek is
    checked; where it lands elsewhere the frames are skipped one by one."""
    import cv2

    if capture.set(cv2.CAP_PROP_POS_FRAMES, target) and (
        int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == target
    ):
        return capture
    capture.release()
    capture = cv2.VideoCapture(str(path))
    for _ in range(target):
        if not capture.grab():
            break
    return capture


def video_frames(
    path: str, *, every: int = 1, fps: float | None = None, max_frames: int | None = None,
    start: int = 0, stop: int | None = None,
) -> Iterator[Frame]:
    """Decode a video file with OpenCV, frame by frame. `start`, `stop`: only the frames numbered
    in [start, stop), kept as one pass from the first frame keeps them (ranges from
    `video_ranges`); only the range that holds the end of the file reports it truncated."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        if start > 0:  # the range starting at 0 reports it
            return
        reason = "file not found" if not Path(path).exists() else "OpenCV cannot open it"
        yield Frame(
            path,
            0,
            None,
            None,
            f"{path}: not a readable video ({reason}); check the file or convert it to MP4",
        )
        return
    try:
        native = capture.get(cv2.CAP_PROP_FPS) or 0.0
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # 0 or less: unknown
        sampler = _Sampler(every, fps, native)
        index = kept = 0
        if start > 0:
            if native <= 0:
                raise MienError(f"{path}: no frame rate in its header, so it cannot be read "
                                f"from frame {start}; read it whole")
            # The sampler and the kept count as a pass from frame 0 leaves them at `start`.
            kept = sum(sampler.keep(i, i / native) for i in range(start))
            # Frame start - 1 is read first: when it is missing, the file ends before this range
            # and an earlier range reports it.
            capture = _seek(capture, path, start - 1)
            if not capture.grab():
                return
            index = start
        while (max_frames is None or kept < max_frames) and (stop is None or index < stop):
            if not capture.grab():
                break
            timestamp = index / native if native > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            if sampler.keep(index, timestamp):
                ok, bgr = capture.retrieve()
                if not ok or bgr is None:
                    break
                kept += 1
                yield Frame(
                    path, index, timestamp, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stream=True
                )
            index += 1
        else:  # stopped at max_frames or at the end of the range, not at the end of the file
            return
        if 0 < index < announced - FRAME_COUNT_SLACK:
            yield Frame(
                path,
                index,
                None,
                None,
                f"{path}: the video ended after {index} of the {announced} frames its container "
                "announces, so the file is probably truncated; re-download or re-encode it",
            )
        if index == 0:
            yield Frame(
                path,
                0,
                None,
                None,
                f"{path}: the video has no decodable frames; check the file or convert it to MP4",
            )
    finally:
        capture.release()


def _camera_frames(source: str, every: int, fps: float | None, max_frames: int | None):
    import cv2

    try:
        index = int(source.split(":", 1)[1])
    except ValueError as exc:
        raise MienError(f"{source}: a camera is named camera:N with N a number") from exc
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        yield Frame(
            source,
            0,
            None,
            None,
            f"{source}: cannot open camera {index}; check it is connected and not in use",
        )
        return
    try:
        sampler = _Sampler(every, fps, capture.get(cv2.CAP_PROP_FPS) or 0.0)
        start = time.monotonic()
        number = kept = 0
        while max_frames is None or kept < max_frames:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            timestamp = time.monotonic() - start
            if sampler.keep(number, timestamp):
                kept += 1
                yield Frame(
                    source, number, timestamp, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stream=True
                )
            number += 1
    finally:
        capture.release()


class Prefetcher:
    """Runs an iterator in a background thread through a bounded queue, so decoding overlaps
    detection while at most `size` frames wait in memory. Exceptions reach the consumer;
    `close()` (or leaving a `with` block) stops the thread."""

    _END = object()

    def __init__(self, iterable: Iterable, size: int = 8):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._stop = threading.Event()
        self.busy_s = 0.0  # time the producer spent making items (e.g. decoding)
        self._thread = threading.Thread(target=self._run, args=(iter(iterable),), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterator: Iterator) -> None:
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                self.busy_s += time.perf_counter() - start
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None and self._stop.is_set():
                close()
        self._put(self._END)

    def ready(self) -> int:
        """Items already waiting (0: the next `next()` would block)."""
        return self._queue.qsize()

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._END:
            self._queue.put(self._END)  # later calls end too
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True, slots=True)
class _Failure:
    exc: BaseException
