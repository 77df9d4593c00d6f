"""CelebA aligned images re-framed like `mien analyze`'s face crops, for training `glasses` and
`smile` (derived data for a run folder; never commit it).

`mien analyze` crops a detected face as a square of 1.2 x the detector's box. On CelebA's aligned
images the default detector's box is nearly the same everywhere (measured on 150 images: centre
at 0.506 w, 0.569 h, crop side 0.755 w, IQR of the side 0.067 w), so one fixed square crop gives
the framing the classifiers see at inference; augmentation covers the rest. The crop is
`mien.models.cards.celeba_face_crop_jpeg`, so cards can rebuild their validation images.

    python tools/celeba_face_crops.py ../shared/data/celeba runs/data/celeba_crops [--size 64]

The output is a CelebA folder again (`img_align_celeba/` + the attribute table), so
`open_dataset(OUT, attribute=...)` and `mien train` with `attribute:` read it unchanged.
"""

from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> None:
    from mien.data.io import read_image
    from mien.models.cards import celeba_face_crop_jpeg

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("celeba", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=64, help="side of the saved crops")
    args = parser.parse_args()
    src = args.celeba / "img_align_celeba"
    dst = args.out / "img_align_celeba"
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.celeba / "list_attr_celeba.txt", args.out / "list_attr_celeba.txt")

    def one(path: Path) -> None:  # same names as the attribute table
        (dst / path.name).write_bytes(celeba_face_crop_jpeg(read_image(path, "rgb"), args.size))

    files = sorted(src.glob("*.jpg"))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, files))
    print(f"{len(files)} crops in {dst}")


if __name__ == "__main__":
    main()
