"""Face crops as image files, cut by `Pipeline.crop` exactly as the classifiers read them:
every face of an analysis (`mien analyze --save-crops`), and a training set cut from a
class-folder tree of photos (`mien data crop`) so a model trains on what it will be shown."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.data.preprocess import Framing
from mien.errors import DatasetError, ImageReadError
from mien.inference.sources import Frame
from mien.inference.writers import SourceNames
from mien.types import Face

JPEG_QUALITY = 95  # crops of JPEG photos stay JPEG; this keeps re-encoding losses small


def save_image(path: Path, image: np.ndarray) -> None:
    """A uint8 RGB array to `path`, in the format its suffix names."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=JPEG_QUALITY)


class CropWriter:
    """Each face crop of each frame as a PNG under `folder`, named by source, frame and face:
    `photo_0.png` for face 0 of photo.jpg, `clip_f000120_1.png` for face 1 of frame 120 of a
    video. `framing` defaults to the pipeline's `crop_framing`."""

    def __init__(self, folder: str | os.PathLike, pipeline, framing: Framing | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pipeline = pipeline
        self.framing = framing or pipeline.crop_framing
        self._stems = SourceNames()
        self.written = 0

    def add(self, frame: Frame, faces: Sequence[Face]) -> list[Path]:
        """Write the crops of `faces`, found in `frame`, in face-index order."""
        if frame.image is None or not faces:
            return []
        stem = self._stems(frame.source) + (f"_f{frame.index:06d}" if frame.stream else "")
        paths = []
        for i, crop in enumerate(self.pipeline.crop(frame.image, faces, self.framing)):
            paths.append(self.folder / f"{stem}_{i}.png")
            save_image(paths[-1], crop)
        self.written += len(paths)
        return paths


@dataclass(frozen=True, slots=True)
class CroppedSet:
    """What `crop_folder` made: how many crops, and the photos it skipped."""

    root: Path
    written: int
    no_face: tuple[str, ...]  # photos in which the detector found no face
    unreadable: tuple[str, ...]  # one error message per photo that could not be read


def crop_folder(src: str | os.PathLike, dst: str | os.PathLike, pipeline,
                framing: Framing | None = None,
                progress: Callable[[int, int], None] | None = None,
                png: bool = False) -> CroppedSet:
    """Cut the largest face of every photo of a class-folder tree (`SRC/<class>/*` or
    `SRC/{train,val,test}/<class>/*`) with `framing` (default: the pipeline's `crop_framing`)
    into the same tree under `dst`, each crop under its photo's relative path and format, or
    as PNG with `png` (lossless: exactly the pixels `mien analyze` shows a model; the photo's
    name + ".png"). Photos without a face and unreadable ones are skipped and listed.
    `progress(done, total)` is called after each photo."""
    from mien.data.celeba import is_celeba
    from mien.data.datasets import open_dataset
    from mien.data.io import read_image

    src, dst = Path(src), Path(dst)
    if not src.is_dir() or is_celeba(src):
        raise DatasetError(f"{src}: not a folder of class folders; lay photos out as "
                           f"{src}/<class>/<photos> (CelebA: crop its faces with "
                           "tools/celeba_face_crops.py)")
    if dst.exists() and any(dst.iterdir()):
        raise DatasetError(f"{dst}: not empty; choose a new folder for the crops")
    photos = [s for ds in open_dataset(src).values() for s in ds.sources]
    framing = framing or pipeline.crop_framing
    written, no_face, unreadable = 0, [], []
    for done, photo in enumerate(photos, 1):
        try:
            image = read_image(photo, "rgb")
        except ImageReadError as exc:
            unreadable.append(str(exc))
        else:
            found = pipeline.largest_face(image, framing)
            if found is None:
                no_face.append(photo)
            else:
                rel = Path(photo).relative_to(src)
                save_image(dst / (rel.with_name(rel.name + ".png") if png else rel), found[1])
                written += 1
        if progress is not None:
            progress(done, len(photos))
    return CroppedSet(dst, written, tuple(no_face), tuple(unreadable))
