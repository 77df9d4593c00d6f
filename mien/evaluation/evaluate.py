"""Score a classifier on a labelled dataset: class mapping, batched streaming, test-time
augmentation, unreadable files, timing, and the JSON record of the result.

With a detector, the dataset holds whole photos: the largest face found in each is cut as the
pipeline cuts it for this model and scored. A photo without a face gets the answer `no_face`,
an extra label that is never a true class, so it counts as wrong in accuracy and in its class's
recall but in no class's precision, and it stays out of ECE (the classifier said nothing)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mien.data.datasets import ImageDataset, LabelSpec
from mien.data.preprocess import Framing
from mien.errors import DatasetError, ImageReadError, MienError
from mien.evaluation.calibration import Reliability, reliability
from mien.evaluation.metrics import (
    ClassificationMetrics,
    classification_metrics,
    top_k_accuracy,
)

NO_FACE = "no_face"  # the answer for a photo in which the detector found no face
FRAMING_SAMPLE = 8  # images the framing check detects faces in: enough for a pattern, ~0.1 s


class Classifier(Protocol):
    """What `mien.models.loading.load_classifier` returns (see docs/design.md)."""

    name: str
    labels: tuple[str, ...]

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


def _hflip(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


# Test-time augmentation: the views whose probabilities are averaged per image.
TTA_VIEWS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], ...]] = {
    "none": (lambda img: img,),
    "flip": (lambda img: img, _hflip),
}


@dataclass(frozen=True, slots=True)
class Unreadable:
    source: str
    error: str


@dataclass(frozen=True, slots=True)
class Detection:
    """How whole photos became the faces that were scored (`evaluate(..., detector=)`)."""

    detector: str
    framing: Framing
    photos: int  # photos read
    no_face: int  # of those, photos in which no face was found

    def describe(self) -> str:
        align = "on" if self.framing.align else "off"
        return f"{self.detector}, margin {self.framing.margin:g}, align {align}"

    def to_json(self) -> dict:
        return {"detector": self.detector, "framing": self.framing.to_dict(),
                "no_face": self.no_face, "photos": self.photos}


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One classifier scored on one dataset. Arrays are per scored sample (unreadable images
    excluded); `indices` point into the (relabelled) dataset that was scored."""

    model: str
    data: str
    metrics: ClassificationMetrics
    y_true: np.ndarray  # (N,) int64, indices into metrics.labels
    proba: np.ndarray  # (N, C) float32
    indices: np.ndarray  # (N,) int64
    sources: tuple[str, ...]
    unreadable: tuple[Unreadable, ...]
    seconds: float
    tta: str = "none"
    split: str | None = None
    dataset: ImageDataset | None = field(default=None, repr=False)  # what `indices` point into
    model_facts: Mapping[str, float] = field(default_factory=dict)  # parameters, train_seconds
    detect: Detection | None = None  # scored on detected faces of whole photos
    warnings: tuple[str, ...] = ()  # e.g. the images look unlike the model's face crops

    def image(self, row: int, mode: str | None = "rgb") -> np.ndarray:
        """The image of scored sample `row` (for thumbnails)."""
        if self.dataset is None:
            raise ValueError("this evaluation kept no dataset to load images from")
        return self.dataset.load(int(self.indices[row]), mode)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metrics.labels

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)

    @property
    def face_found(self) -> np.ndarray:
        """(N,) bool: rows the classifier answered (False: a photo without a face)."""
        answered = len(self.labels) - 1 if self.detect is not None else len(self.labels)
        return self.y_pred < answered

    @property
    def reliability(self) -> Reliability:
        """Top-label confidence against accuracy per bin: the reliability diagram and ECE."""
        found = self.face_found
        return reliability(self.proba[found], self.y_true[found])

    @property
    def ece(self) -> float:
        """Expected calibration error of the scored probabilities (15 equal-width bins)."""
        return self.reliability.ece

    @property
    def images_per_second(self) -> float:
        return self.metrics.n / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict:
        """The documented `mien evaluate --json` record (extra keys after the required ones)."""
        m = self.metrics
        out = {
            "model": self.model,
            "data": self.data,
            "n": m.n,
            "accuracy": m.accuracy,
            "balanced_accuracy": m.balanced_accuracy,
            "macro_f1": m.macro_f1,
            "ece": self.ece,
            "labels": list(m.labels),
            "per_class": {c.label: c.to_dict() for c in m.per_class},
            "confusion": [list(row) for row in m.confusion],
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
            "split": self.split,
            "tta": self.tta,
            "unreadable": [{"source": u.source, "error": u.error} for u in self.unreadable],
        }
        for k, value in m.top_k:
            out[f"top{k}_accuracy"] = value
        if self.detect is not None:
            out["detect"] = self.detect.to_json()
        if self.warnings:
            out["warnings"] = list(self.warnings)
        out.update(self.model_facts)
        return out

    def mistakes(self, limit: int = 24) -> list[int]:
        """Rows of the most confident wrong predictions, most confident first."""
        pred = self.y_pred
        wrong = np.flatnonzero((pred != self.y_true) & self.face_found)
        conf = self.proba[wrong, pred[wrong]]
        return wrong[np.argsort(-conf, kind="stable")][:limit].tolist()


def map_to_model_labels(
    dataset: ImageDataset, model_labels: Sequence[str], label_spec: LabelSpec | None = None
) -> ImageDataset:
    """Relabel `dataset` so its label indices index `model_labels`. A dataset class that is not
    a model label, after `label_spec`'s renames and drops, is an error naming it."""
    if label_spec is not None and not label_spec.is_identity:
        dataset = dataset.relabel(label_spec)
    model_labels = tuple(model_labels)
    counts = dataset.counts()
    # A class with no images (e.g. a FER2013 class absent from one split) needs no mapping.
    unknown = [c for c in dataset.classes if c not in model_labels and counts[c] > 0]
    if unknown:
        first = unknown[0]
        raise DatasetError(
            f"dataset class {', '.join(map(repr, unknown))} is not a label of the model "
            f"(labels: {', '.join(model_labels)}); map it with --label-map {first}=<label> "
            f"or drop it with --ignore {first}"
        )
    if len(dataset) == 0:
        raise DatasetError(f"{dataset.name}: no images left to evaluate after --ignore")
    index = np.array([model_labels.index(c) if c in model_labels else -1 for c in dataset.classes],
                     dtype=np.int64)
    return ImageDataset(model_labels, dataset.sources, index[dataset.labels],
                        arrays=dataset.arrays, name=dataset.name)


def evaluate(
    classifier: Classifier,
    dataset: ImageDataset,
    label_spec: LabelSpec | None = None,
    tta: str | None = None,
    batch_size: int = 64,
    *,
    model_name: str | None = None,
    data_name: str | None = None,
    split: str | None = None,
    top_k: Sequence[int] = (2,),
    progress: Callable[[int], None] | None = None,
    detector=None,
    check_framing: bool = False,
) -> Evaluation:
    """Run `classifier` over every image of `dataset` in batches and score it.

    Unreadable images are listed in the result and skipped, not fatal. `seconds` is the wall
    time of decoding plus prediction, so images/s is the end-to-end throughput. `progress`
    is called with the number of images handled after each batch. `detector` (a name or a
    Detector): the images are whole photos; see the module docstring. `check_framing` (without
    a detector): `warnings` says when the images look unlike the model's face crops
    (`framing_warnings`).
    """
    tta = tta or "none"
    if tta not in TTA_VIEWS:
        raise MienError(f"--tta {tta!r}: choose one of {', '.join(TTA_VIEWS)}")
    if batch_size < 1:
        raise MienError(f"--batch-size {batch_size}: use a positive number")
    labels = tuple(classifier.labels)
    ds = map_to_model_labels(dataset, labels, label_spec)
    warnings = framing_warnings(classifier, ds) if check_framing and detector is None else ()
    views = TTA_VIEWS[tta]
    if tta == "flip" and getattr(classifier, "tta", "none") == "flip":
        views = TTA_VIEWS["none"]  # the model averages every face with its mirror already
    preprocess = getattr(classifier, "preprocess", None)
    mode = getattr(preprocess, "color", "rgb")  # decode straight to what the model eats
    face_of = None
    if detector is not None:
        detector, framing, face_of = _face_cropper(classifier, detector)
        mode = "rgb"  # detectors read colour photos

    probas: list[np.ndarray] = []
    kept: list[int] = []
    unreadable: list[Unreadable] = []
    start = time.perf_counter()
    for lo in range(0, len(ds), batch_size):
        images, rows = [], []
        for i in range(lo, min(lo + batch_size, len(ds))):
            try:
                image = ds.load(i, mode)
            except ImageReadError as exc:
                unreadable.append(Unreadable(ds.sources[i], str(exc)))
                continue
            images.append(image if face_of is None else face_of(image))
            rows.append(i)
        if images:
            probas.append(_answers(classifier, images, views, len(labels), face_of is not None))
            kept += rows
        if progress is not None:
            progress(min(lo + batch_size, len(ds)))
    seconds = time.perf_counter() - start
    if not kept:
        raise DatasetError(f"{ds.name}: none of the {len(ds)} images could be read")

    idx = np.asarray(kept, dtype=np.int64)
    proba = np.concatenate(probas)
    y_true = ds.labels[idx]
    found = proba.argmax(axis=1) < len(labels)
    detect = None
    if face_of is not None:
        detect = Detection(detector.name, framing, len(kept), int((~found).sum()))
        if not found.any():
            raise DatasetError(f"{ds.name}: {detector.name} found no face in any of the "
                               f"{len(kept)} photos; leave --detect out for face crops, or try "
                               "another --detector")
    metrics = classification_metrics(y_true, proba.argmax(axis=1),
                                     labels + ((NO_FACE,) if detect else ()))
    # Top-k over the faces found; a photo without one is a miss.
    top = tuple((k, top_k_accuracy(y_true[found], proba[found], k) * float(found.mean()))
                for k in top_k if 1 < k < len(labels))
    return Evaluation(
        model=model_name or getattr(classifier, "name", type(classifier).__name__),
        data=data_name or ds.name,
        metrics=dataclasses.replace(metrics, top_k=top),
        y_true=y_true,
        proba=proba,
        indices=idx,
        sources=tuple(ds.sources[i] for i in kept),
        unreadable=tuple(unreadable),
        seconds=seconds,
        tta=tta,
        split=split,
        dataset=ds,
        detect=detect,
        warnings=warnings,
    )


def select_split(splits: Mapping[str, ImageDataset], split: str | None = None,
                 *, source: str = "") -> tuple[str, ImageDataset]:
    """The split to evaluate: the one asked for, else test, else val, else the only one."""
    if split is not None:
        if split not in splits:
            raise DatasetError(
                f"{source}: no split {split!r}; it has {', '.join(splits)} (choose with --split)"
            )
        return split, splits[split]
    for name in ("test", "val", "all"):
        if name in splits:
            return name, splits[name]
    name = next(iter(splits))
    return name, splits[name]


def framing_warnings(classifier: Classifier, dataset: ImageDataset, detector=None,
                     sample: int = FRAMING_SAMPLE) -> tuple[str, ...]:
    """A warning when `dataset` looks unlike the faces `classifier` reads: in most of `sample`
    images spread over it, the largest face `detector` (default: `mien analyze`'s) finds
    covers under half the share of the picture the model's framing gives a face, as when
    whole photos are scored by a face-crop model. Images without a face found (small crops
    often) say nothing."""
    from mien.detection import create_detector
    from mien.inference.pipeline import framing_of

    if detector is None or isinstance(detector, str):
        detector = create_detector(detector)
    framing = framing_of(classifier)
    expected = 1 / (1 + framing.margin) ** 2  # the crop's side is the box's x (1 + margin)
    rows = np.unique(np.linspace(0, len(dataset) - 1, min(sample, len(dataset))).round())
    shares = []
    for row in rows.astype(int):
        try:
            image = dataset.load(row, "rgb")
        except ImageReadError:
            continue
        faces = detector.detect(image)
        if faces:
            shares.append(max(f.box.area for f in faces) / (image.shape[0] * image.shape[1]))
    if len(shares) < max(2, (len(rows) + 1) // 2) or np.median(shares) >= expected / 2:
        return ()
    return (f"the faces found fill {np.median(shares):.0%} of the sampled images, but this "
            f"model reads crops in which the face fills about {expected:.0%} (margin "
            f"{framing.margin:g}): DATA looks like whole photos; add --detect (Python: "
            "detector=) to score each photo's largest face cut as `mien analyze` cuts it",)


def _face_cropper(classifier: Classifier, detector):
    """(detector, framing, photo -> crop of its largest face or None): the face the pipeline
    would cut for this classifier, by the pipeline's own code."""
    from mien.inference.pipeline import Pipeline

    pipeline = Pipeline(detector, {"model": classifier})
    framing = pipeline.framings["model"]

    def face_of(photo: np.ndarray) -> np.ndarray | None:
        found = pipeline.largest_face(photo, framing)
        return None if found is None else found[1]

    return pipeline.detector, framing, face_of


def _answers(classifier: Classifier, images: list, views, num_classes: int, no_face: bool):
    """float32 (N, num_classes [+ 1]): the probabilities averaged over the views; an image
    None (no face found) is a certain `no_face`, the extra last column."""
    out = np.zeros((len(images), num_classes + no_face), np.float64)
    have = [i for i, im in enumerate(images) if im is not None]
    out[[i for i, im in enumerate(images) if im is None], -1] = 1.0
    if have:
        faces = [images[i] for i in have]
        for view in views:
            out[have, :num_classes] += _checked_proba(classifier, [view(im) for im in faces],
                                                      num_classes) / len(views)
    return out.astype(np.float32)


def _checked_proba(classifier: Classifier, images: list[np.ndarray], num_classes: int):
    p = np.asarray(classifier.predict_proba(images))
    if p.shape != (len(images), num_classes):
        raise MienError(
            f"model {getattr(classifier, 'name', '?')} returned probabilities of shape {p.shape}, "
            f"expected {(len(images), num_classes)}"
        )
    return p
