"""MTCNN (Zhang et al. 2016): three tiny cascaded nets, box + 5 landmarks that follow head roll.

The nets ship inside mien as ONNX files (mien/models/weights/mtcnn_{p,r,o}net.onnx, 2 MB in all),
converted once by tools/export_mtcnn.py from the MIT-licensed weights of facenet-pytorch 2.6.0
(licence: mtcnn.NOTICE.md beside them), checked against their SHA-256 on load and run on ONNX
Runtime: `--detector mtcnn` and `--landmarks mtcnn` need neither torch nor facenet-pytorch.

Speed: candidate bookkeeping is vectorised numpy, NMS runs in OpenCV, and R-Net / O-Net see all
candidates of a photo in one batch each. (Packing the pyramid into one canvas for a single P-Net
call was tried and was slower: P-Net's cost is its pixels, not its calls.)"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mien.detection.base import (
    DEFAULT_OPTIONS,
    DetectorOptions,
    check_image,
    register_detector,
    to_faces,
)
from mien.detection.files import find_model_file, verified_model_file
from mien.errors import MissingDependencyError, ModelFileError
from mien.types import Face

INSTALL = "reinstall mien: its bundled MTCNN files (mtcnn_*.onnx) are missing"
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709  # the paper's scale step: each level has half the pixels of the last
CELL, STRIDE = 12, 2  # P-Net sees 12x12 windows every 2 pixels
NET_NAMES = ("pnet", "rnet", "onet")
# A net as the detector calls it: float32 NCHW in, its outputs as numpy arrays out.
Net = Callable[[np.ndarray], list[np.ndarray]]


def _available() -> bool:
    return all(find_model_file(f"mtcnn-{n}") is not None for n in NET_NAMES)


def _onnx_net(name: str) -> Net:
    import onnxruntime as ort

    path = verified_model_file(f"mtcnn-{name}")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # tiny nets called many times per photo: a thread pool only adds hand-offs (and spinning
    # threads that starve everything else on a busy machine)
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelFileError(f"{path}: not a loadable ONNX model "
                             f"({str(exc).splitlines()[0]}); reinstall mien") from exc
    return lambda x: session.run(None, {"x": x})


def load_nets() -> dict[str, Net]:
    if not _available():
        raise MissingDependencyError(f"the mtcnn detector needs its nets: {INSTALL}")
    return {name: _onnx_net(name) for name in NET_NAMES}


def _onet_points(boxes: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """O-Net's landmark outputs (fractions of its input box) -> (N, 5, 2) image points."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    px = w[:, None] * marks[:, :5] + boxes[:, :1] - 1
    py = h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1
    return np.stack([px, py], axis=2)


def _normalize(batch_hwc: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1], as the nets were trained."""
    x = (batch_hwc.astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return np.c_[x1, y1, x1 + side, y1 + side]


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes[:, :4] + reg * np.c_[w, h, w, h]


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float, by_min: bool = False) -> np.ndarray:
    """Greedy NMS; `by_min` divides the overlap by the smaller box (MTCNN's last stage)."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    if not by_min:
        import cv2

        xywh = np.c_[boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]].astype(np.float32)
        return np.asarray(
            cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float32).tolist(), 0.0, iou),
            np.int64,
        ).reshape(-1)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = np.argsort(-scores), []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = iw * ih / np.minimum(areas[i], areas[rest])
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Square crops resized to size x size; outside the image is black, as in the original."""
    import cv2

    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(np.round(boxes[:, :4]).astype(int)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw < 2 or bh < 2:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x2 + 1), min(h, y2 + 1)
        if sx2 <= sx1 or sy2 <= sy1:
            continue
        patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def pyramid_scales(height: int, width: int, min_face: int) -> list[float]:
    """Scales at which a `min_face` face becomes P-Net's 12 pixels, down to the whole image."""
    scale = CELL / min_face
    side = min(height, width) * scale
    scales = []
    while side >= CELL:
        scales.append(scale)
        scale *= PYRAMID_FACTOR
        side *= PYRAMID_FACTOR
    return scales


@register_detector(
    "mtcnn", "MTCNN on ONNX Runtime (box + 5 landmarks; bundled)", _available, install=INSTALL,
)
class MTCNNDetector:
    name = "mtcnn"
    fork_safe = True  # its nets run on the caller's thread (see _onnx_net)

    def __init__(
        self,
        options: DetectorOptions = DEFAULT_OPTIONS,
        stage_thresholds: tuple[float, float, float] = STAGE_THRESHOLDS,
        nets: dict[str, Net] | None = None,  # default: the bundled ONNX nets
    ):
        self.options = options
        t = options.score_threshold
        self.thresholds = stage_thresholds if t is None else (*stage_thresholds[:2], t)
        if nets is not None:
            self.fork_safe = False  # nets of the caller's: their threads are theirs
        nets = nets or load_nets()
        self.pnet, self.rnet, self.onet = (nets[n] for n in NET_NAMES)

    def detect(self, image: np.ndarray) -> list[Face]:
        image = check_image(image)
        boxes = self._proposals(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return []
        boxes, scores, points = self._output(image, boxes)
        # MTCNN boxes are inclusive pixel ranges; Face boxes end one past the last pixel.
        boxes[:, 2:4] += 1
        return to_faces(boxes, scores, points, self.options, -np.inf, image.shape)

    def _proposals(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        found = []
        for scale in pyramid_scales(h, w, max(self.options.min_face, CELL)):
            size = (int(w * scale + 1), int(h * scale + 1))
            level = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            prob, reg = self.pnet(_normalize(level[None]))
            prob, reg = prob[0], reg[0]
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            # Each P-Net cell is a 12x12 window every 2 pixels of this level.
            q1 = np.floor((STRIDE * np.c_[xs, ys] + 1) / scale)
            q2 = np.floor((STRIDE * np.c_[xs, ys] + CELL) / scale)
            cand = np.c_[q1, q2, prob[ys, xs], reg[:, ys, xs].T]
            found.append(cand[_nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        cand = np.concatenate(found)
        cand = cand[_nms(cand[:, :4], cand[:, 4], 0.7)]
        boxes = _square(_regress(cand[:, :4], cand[:, 5:9], plus_one=False))
        return np.c_[boxes, cand[:, 4]]

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        prob, reg = self.rnet(_normalize(_crops(image, boxes, 24)))
        keep = prob > self.thresholds[1]
        boxes, reg = np.c_[boxes[keep, :4], prob[keep]], reg[keep]
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes, reg = boxes[pick], reg[pick]
        return np.c_[_square(_regress(boxes, reg)), boxes[:, 4]]

    def _output(self, image: np.ndarray, boxes: np.ndarray):
        prob, reg, marks = self.onet(_normalize(_crops(image, boxes, 48)))
        keep = prob > self.thresholds[2]
        boxes, reg, marks, scores = boxes[keep, :4], reg[keep], marks[keep], prob[keep]
        points = _onet_points(boxes, marks)
        boxes = _regress(boxes, reg)
        pick = _nms(boxes, scores, 0.7, by_min=True)
        return boxes[pick], scores[pick].astype(np.float64), points[pick]


class MTCNNLandmarks:
    """MTCNN's O-Net run on boxes from another detector, for landmarks that follow head roll.

    YuNet's eye points barely tilt with the head (a face turned 20 degrees reads as 2 to 14),
    so crops aligned on them stay tilted; O-Net on the squared YuNet box reads the tilt within
    a few degrees, for about a millisecond per face."""

    fork_safe = True  # O-Net runs on the caller's thread (see _onnx_net)

    def __init__(self, onet: Net | None = None):  # default: the bundled ONNX O-Net
        if onet is None and not _available():
            raise MissingDependencyError(f"--landmarks mtcnn needs MTCNN's nets: {INSTALL}")
        self.onet = onet or _onnx_net("onet")

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        import dataclasses

        if not faces:
            return faces
        image = check_image(image)
        boxes = _square(np.array([[f.box.x1, f.box.y1, f.box.x2 - 1, f.box.y2 - 1] for f in faces]))
        _, _, marks = self.onet(_normalize(_crops(image, boxes, 48)))
        points = _onet_points(boxes, marks.astype(np.float64))
        return [
            dataclasses.replace(f, landmarks=tuple((float(x), float(y)) for x, y in p))
            for f, p in zip(faces, points, strict=True)
        ]
