"""YuNet (libfacedetection, Apache-2.0): box + 5 landmarks. Its 230 kB ONNX file ships inside
mien (see mien/models/weights/yunet_s_640_640.NOTICE.md) and is checked against its SHA-256 on
load.

Input size. YuNet sees each photo at a size taken from the photo itself, never on a fixed
640x640 canvas: as it is between `min_side` and `max_side` (a 180x192 GENKI portrait is a tenth
of a 640x640 canvas's pixels), scaled down to `max_side` when larger, up to `min_side` when
smaller. The network is fully convolutional, so the picture is only padded (bottom and right,
black) to the next multiple of 32, its coarsest stride. Shrinking small photos further would be
cheaper still but not free: YuNet's smallest anchor is about 10 px and at the photo's own size
it already misses many 20-30 px faces (benchmarks/results/detection_grid.json), so every face
would pay.

Small faces (issue 16). A photo larger than `max_side` is also seen at `fine_scale` (3x) its own
size, the fine view, so that a face of 8 px in a 4,000 px photo becomes 24 px, inside YuNet's
range; the whole view keeps the large faces. The fine view runs in tiles of at most `tile` px a
side (memory stays bounded: about 0.3 GB for a 12 MP photo instead of several GB), which overlap
by the largest face the whole view may miss (30 px there); a box touching a tile's inner edge is
left to the neighbour that holds it whole. Cost: tens of milliseconds per megapixel seen, so a
12 MP photo takes seconds; `fine_scale=None` (`mien analyze --fine-scale 0`) turns it off. Photos
of `max_side` or less (webcam frames, portraits) are seen once, at their own size, as before.

Engine (issue 22). The same network, padding and decoding as OpenCV's FaceDetectorYN (priors
per stride, score sqrt(cls * obj), NMSBoxes with top_k), run by ONNX Runtime: about half the
detection time of OpenCV's DNN module with the same detections (tests/detection/
test_yunet_engine.py holds both to it; times in benchmarks/results/analyze_compare.json)."""

from __future__ import annotations

import os
import threading

import numpy as np

from mien.deadline import check_deadline
from mien.detection.base import (
    DEFAULT_OPTIONS,
    DetectorOptions,
    check_image,
    register_detector,
    to_faces,
)
from mien.detection.files import find_model_file, verified_model_file
from mien.errors import MienError, ModelFileError
from mien.types import Face


def _available() -> bool:
    return find_model_file("yunet") is not None


@register_detector("yunet", "YuNet (box + 5 landmarks; bundled)", _available,
                   install="reinstall mien: its bundled ONNX file is missing")
class YuNetDetector:
    name = "yunet"
    default_threshold = 0.6

    def __init__(
        self,
        options: DetectorOptions = DEFAULT_OPTIONS,
        model_path: str | os.PathLike | None = None,  # default: the bundled file
        models_dir: str | os.PathLike | None = None,  # or a copy from `mien models fetch`
        max_side: int | None = 640,
        min_side: int | None = 144,
        fine_scale: float | None = 3.0,
        max_pixels: int = 120_000_000,
        tile: int = 2048,
        top_k: int = 5000,
        threads: int | None = None,  # ONNX Runtime threads; None: OpenCV's thread count
    ):
        import cv2

        self.options = options
        self.model_path = verified_model_file("yunet", model_path, models_dir)
        # The whole view: large photos are scaled down to `max_side`, which keeps big faces
        # within YuNet's anchors and the cost low; faces it shrinks below about 10 px are lost.
        self.max_side = max_side
        # Small pictures are scaled up: a face filling a 48 px crop is below YuNet's comfortable
        # range (found in 76% of FER2013 crops as they are, 95% at 3x).
        self.min_side = min_side
        # The fine view: for photos the whole view shrinks, a second pass at `fine_scale` times
        # the photo's own size finds the faces the whole view shrank below YuNet's smallest
        # anchor (about 10 px); `max_pixels` bounds its cost, `tile` its memory. None: the whole
        # view only.
        if fine_scale is not None and fine_scale <= 0:
            raise MienError(f"fine_scale={fine_scale}: use a positive scale, or None for none")
        if tile < 256:
            raise MienError(f"tile={tile}: use tiles of at least 256 px")
        self.fine_scale = fine_scale
        self.max_pixels = max_pixels
        self.tile = tile
        t = options.score_threshold
        self.threshold = self.default_threshold if t is None else t
        self.top_k = top_k
        # OpenCV's thread count when the detector is built, as when OpenCV ran it (a Pipeline
        # asks for 1: it detects beside classification, each on its own core).
        threads = threads or max(1, cv2.getNumThreads())
        # Usable in a worker process forked after it was built (mien.inference.workers): a
        # session with a thread pool is not, as the pool's threads are not forked with it.
        self.fork_safe = threads == 1
        self._session = shared_session(self.model_path, threads)
        self._outputs = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps")
                         for stride in STRIDES]

    def scales(self, height: int, width: int) -> list[float]:
        """The sizes, relative to the photo's, at which YuNet sees it."""
        whole = 1.0
        if self.max_side and max(height, width) > self.max_side:
            whole = self.max_side / max(height, width)
        elif self.min_side and max(height, width) < self.min_side:
            whole = self.min_side / max(height, width)
        if not self.fine_scale or whole >= 1.0:
            return [whole]
        fine = min(self.fine_scale, (self.max_pixels / (height * width)) ** 0.5)
        return [whole, fine] if fine > 1.25 * whole else [whole]

    def detect(self, image: np.ndarray) -> list[Face]:
        image = check_image(image)
        # Kept RGB: each view swaps to YuNet's BGR as it fills its input, so no whole BGR copy
        # of the photo is made (a swap commutes with the per-channel resizes).
        whole, *fine = self.scales(*image.shape[:2])
        found = [self._detect_at(image, whole)]
        # The fine view must hold whole every face the whole view may miss: up to 30 px there.
        try:
            found += [self._detect_tiled(image, s, overlap=round(30 * s / whole)) for s in fine]
        finally:
            if fine:
                self.release_memory()
        raw = np.concatenate(found)
        boxes = np.c_[raw[:, 0], raw[:, 1], raw[:, 0] + raw[:, 2], raw[:, 1] + raw[:, 3]]
        points = raw[:, 4:14].reshape(-1, 5, 2)
        return to_faces(boxes, raw[:, 14], points, self.options, self.threshold, image.shape)

    def release_memory(self) -> None:
        """Hand back the memory ONNX Runtime's arena grew to for the fine view's tiles: a tiny
        run that shrinks the arena at its end (~15 ms; a 12 MP photo's 390 MiB of RSS fell to
        145 MiB), where keeping it left a server's RSS far above its baseline after a burst."""
        shrink_arena(self._session)

    def _detect_at(self, rgb: np.ndarray, scale: float) -> np.ndarray:
        """YuNet's rows (x, y, w, h, 5 landmarks, score) for `rgb` seen at `scale`, in the
        photo's own pixels."""
        import cv2

        h, w = rgb.shape[:2]
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        if (sw, sh) != (w, h):
            shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (sw, sh), interpolation=shrink)
        pw, ph = -(-sw // STRIDES[-1]) * STRIDES[-1], -(-sh // STRIDES[-1]) * STRIDES[-1]
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :sh, :sw] = rgb.transpose(2, 0, 1)[::-1]  # RGB -> BGR
        outputs = self._session.run(self._outputs, {"input": blob})
        raw = decode(outputs, pw, self.threshold, self.options.nms_iou, self.top_k)
        # Back to the photo's pixels with the exact per-axis ratios of the resize.
        return raw * np.r_[np.tile([w / sw, h / sh], 7), 1.0]

    def _detect_tiled(self, rgb: np.ndarray, scale: float, overlap: int) -> np.ndarray:
        """`_detect_at(rgb, scale)` in overlapping tiles of at most `self.tile` px of the scaled
        picture, each cut from the photo and scaled on its own, so the scaled photo is never held
        whole. A box touching a tile's inner edge is dropped: the tile beside it holds that face
        whole, as long as it is `overlap` px (of the scaled picture) or smaller."""
        import cv2

        h, w = rgb.shape[:2]
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        overlap = min(overlap, self.tile // 2)
        rows = []
        for x0, x1 in tile_spans(sw, self.tile, overlap):
            for y0, y1 in tile_spans(sh, self.tile, overlap):
                check_deadline("detecting faces in the next tile")
                # The photo's pixels under this tile (one more around, for the interpolation)
                px0, py0 = max(0, int(x0 / scale) - 1), max(0, int(y0 / scale) - 1)
                px1 = min(w, int(np.ceil(x1 / scale)) + 1)
                py1 = min(h, int(np.ceil(y1 / scale)) + 1)
                part = cv2.resize(rgb[py0:py1, px0:px1],
                                  (round((px1 - px0) * scale), round((py1 - py0) * scale)),
                                  interpolation=cv2.INTER_LINEAR)
                # The tile's window of that scaled piece, in the scaled picture's pixels
                ox, oy = round(px0 * scale), round(py0 * scale)
                view = part[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
                raw = self._detect_at(view, 1.0)
                edge = 2.0
                keep = np.ones(len(raw), bool)
                if x0 > 0:
                    keep &= raw[:, 0] > edge
                if y0 > 0:
                    keep &= raw[:, 1] > edge
                if x1 < sw:
                    keep &= raw[:, 0] + raw[:, 2] < view.shape[1] - edge
                if y1 < sh:
                    keep &= raw[:, 1] + raw[:, 3] < view.shape[0] - edge
                raw = raw[keep]
                raw[:, :14] += np.r_[x0, y0, 0, 0, np.tile([x0, y0], 5)]
                rows.append(raw)
        raw = np.concatenate(rows) if rows else np.zeros((0, 15))
        return raw * np.r_[np.tile([w / sw, h / sh], 7), 1.0]


_sessions: dict[tuple[str, int], object] = {}
_sessions_lock = threading.Lock()


def shared_session(model_path, threads: int):
    """One ONNX Runtime session per model file and thread count, shared by every detector
    (thresholds and face limits act after the network; a session runs from several threads
    at once). Each session keeps a memory arena as large as the largest picture or tile it
    has run, so a server building a detector per thread and option set held one per pair."""
    import onnxruntime as ort

    key = (str(model_path), threads)
    with _sessions_lock:
        if key not in _sessions:
            options = ort.SessionOptions()
            options.log_severity_level = 3  # the file declares 640x640 outputs; sizes vary
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # Idle pool threads sleep instead of spinning: with two threads, spinning doubled
            # the CPU time per photo (5.3 vs 2.6 ms on a loaded 2-core machine) that decoding
            # and the classifiers need.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _sessions[key] = ort.InferenceSession(
                any_input_size(model_path.read_bytes()), options,
                providers=["CPUExecutionProvider"])
        return _sessions[key]


def shrink_arena(session) -> None:
    """A tiny run of a YuNet `session` after which ONNX Runtime frees the arena blocks no run
    uses (blocks in use by other threads' runs stay)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    outputs = [o.name for o in session.get_outputs()]
    session.run(outputs, {"input": np.zeros((1, 3, 32, 32), np.float32)}, options)


def release_shared_memory() -> None:
    """Every shared YuNet session's arena shrunk (a server gone idle)."""
    with _sessions_lock:
        sessions = list(_sessions.values())
    for session in sessions:
        shrink_arena(session)


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) spans of equal tiles of at most `tile` covering `length`, neighbours sharing
    at least `overlap`."""
    if length <= tile:
        return [(0, length)]
    n = -(-(length - overlap) // (tile - overlap))
    size = -(-(length - overlap) // n) + overlap
    starts = np.linspace(0, length - size, n).round().astype(int)
    return [(int(s), int(s) + size) for s in starts]


STRIDES = (8, 16, 32)
# The bundled file fixes its input at 1x3x640x640; these bytes are that shape's encoding in the
# protobuf, and the replacement names the last two dimensions instead ("h", "w"), keeping every
# length, so that ONNX Runtime accepts any size as OpenCV did.
_FIXED_INPUT = bytes.fromhex("0a020801" "0a020803" "0a03088005" "0a03088005")
_FREE_INPUT = bytes.fromhex("0a020801" "0a020803" "0a03120168" "0a03120177")


def any_input_size(model: bytes) -> bytes:
    """The YuNet ONNX `model` with its 640x640 input made free (height and width named)."""
    if model.count(_FIXED_INPUT) != 1:
        raise ModelFileError("the YuNet file does not declare the 1x3x640x640 input mien "
                             "expects; reinstall mien or fetch it again (mien models fetch yunet)")
    return model.replace(_FIXED_INPUT, _FREE_INPUT)


def decode(outputs: list[np.ndarray], width: int, threshold: float, nms_iou: float,
           top_k: int) -> np.ndarray:
    """FaceDetectorYN's post-processing of the 12 outputs (cls, obj, bbox, kps per stride) for an
    input `width` pixels wide: rows (x, y, w, h, 5 landmarks, score) kept by NMS, best first."""
    import cv2

    n = len(STRIDES)
    rows = []
    for i, stride in enumerate(STRIDES):
        cls, obj, bbox, kps = (o[0] for o in outputs[i::n])
        # Score every cell (cheap), decode only those at or above the threshold: a 640x480 input
        # has 6,300 cells and a photo's faces keep a few dozen.
        score = np.sqrt(np.clip(cls[:, 0].astype(np.float64), 0, 1)
                        * np.clip(obj[:, 0].astype(np.float64), 0, 1))
        cells = np.flatnonzero(score >= threshold)
        if not len(cells):
            continue
        bbox, kps = bbox[cells].astype(np.float64), kps[cells].astype(np.float64)
        cols = width // stride
        cx, cy = (cells % cols).astype(np.float64), (cells // cols).astype(np.float64)
        bw, bh = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        x1 = (cx + bbox[:, 0]) * stride - bw / 2
        y1 = (cy + bbox[:, 1]) * stride - bh / 2
        points = (kps.reshape(-1, 5, 2) + np.stack([cx, cy], axis=1)[:, None, :]) * stride
        rows.append(np.column_stack([x1, y1, bw, bh, points.reshape(-1, 10), score[cells]]))
    if not rows:
        return np.zeros((0, 15))
    raw = np.concatenate(rows)
    # OpenCV suppresses on the boxes truncated to whole pixels; so does this, for equal output.
    keep = cv2.dnn.NMSBoxes(raw[:, :4].astype(np.int32).tolist(), raw[:, 14].tolist(),
                            threshold, nms_iou, top_k=top_k)
    return raw[np.asarray(keep, dtype=np.int64).reshape(-1)]
