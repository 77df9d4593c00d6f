"""Training data for a `glasses` model with hard cases from ordinary photos: a train/val tree.

train/: the CelebA face crops of tools/celeba_face_crops.py minus the bundled glasses model's
held-out part, plus the GENKI-SZSL photos of benchmarks/labels/genki_eyeglasses_pool.csv (the
bundled model's false alarms and real glasses among file0801-file2000, labelled by eye), cut as
`mien analyze` cuts faces for that model (its detector, its framing) and saved as 64x64 JPEG
like the CelebA crops (in OUT-genki/), each linked --repeat times so the few hundred weigh
against 8,000;
val/: exactly the bundled model's CelebA held-out files, so validation figures compare.

    python tools/glasses_mix.py runs/data/celeba_crops runs/data/glasses_mix [--repeat 4]
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {1: "eyeglasses", 0: "no_eyeglasses"}


def main() -> None:
    import cv2

    from mien.data.datasets import open_dataset
    from mien.data.io import read_image
    from mien.inference.align import crop_face
    from mien.inference.pipeline import Pipeline
    from mien.models.cards import default_data_root, read_card, val_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("celeba_crops", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--labels", type=Path,
                        default=ROOT / "benchmarks/labels/genki_eyeglasses_pool.csv")
    parser.add_argument("--genki", type=Path,
                        default=default_data_root() / "detection/genki_szsl/files")
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()

    if args.out.exists():
        raise SystemExit(f"error: {args.out} exists; remove it or pick another folder")
    for part in ("train", "val"):
        for c in CLASSES.values():
            (args.out / part / c).mkdir(parents=True)
    held = set(val_files(read_card("glasses")) or [])
    celeba = open_dataset(args.celeba_crops, attribute="Eyeglasses")["all"]
    counts = {"train": 0, "val": 0, "genki": 0}
    for src, y in zip(celeba.sources, celeba.labels, strict=True):
        rel = Path(src).resolve().relative_to(args.celeba_crops.resolve()).as_posix()
        part = "val" if rel in held else "train"
        os.symlink(Path(src).resolve(), args.out / part / celeba.classes[y] / Path(src).name)
        counts[part] += 1
    if counts["val"] != len(held):
        raise SystemExit(f"error: {counts['val']} of the {len(held)} held-out files found in "
                         f"{args.celeba_crops}")

    pipeline = Pipeline(None, ["glasses"], threads=1)
    framing = pipeline.framings["glasses"]
    crops = args.out.with_name(args.out.name + "-genki")  # beside the tree: not a class folder
    crops.mkdir(exist_ok=True)
    with open(args.labels) as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    for r in rows:
        image = read_image(args.genki / r["file"])
        faces = pipeline.detect(image)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.box.area)  # the face the labeller saw
        crop = cv2.resize(crop_face(image, face, framing.margin, align=framing.align), (64, 64),
                          interpolation=cv2.INTER_AREA)
        path = crops / f"genki_{r['file']}"
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        for k in range(args.repeat):
            os.symlink(path.resolve(), args.out / "train" / CLASSES[int(r["eyeglasses"])]
                       / f"{path.stem}_r{k}.jpg")
        counts["genki"] += 1
    print(f"{args.out}: train {counts['train']} CelebA + {counts['genki']} GENKI x{args.repeat}, "
          f"val {counts['val']} CelebA (the bundled model's held-out part)")


if __name__ == "__main__":
    main()
