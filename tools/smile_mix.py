"""Training data of the bundled `smile` model: a train/val tree of symbolic links.

train/: SMILEs minus its held-out part, plus CelebA's Smiling attribute (named celeba_*) of the
CelebA folder given; val/: the SMILEs held-out part only, the stratified 10 % per class of
`stratified_split(..., 0.1, seed=0)`, so validation is SMILEs alone.

The bundled model is trained on the whole tree cut as `mien analyze` cuts faces for it: link the
raw CelebA photos, then let the detector frame every photo:

    python tools/smile_mix.py ../shared/data/smiles ../shared/data/celeba runs/data/smile_raw
    mien data crop runs/data/smile_raw runs/data/smile_framed --margin 0 --align

(Earlier models linked CelebA's fixed-square crops of tools/celeba_face_crops.py instead.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    from mien.data.datasets import open_dataset, stratified_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("smiles", type=Path)
    parser.add_argument("celeba_crops", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    smiles = open_dataset(args.smiles)["all"]
    _, _, record = stratified_split(smiles, args.val_fraction, args.seed)
    held = {str(Path(s).resolve()) for s in record["val_sources"]}
    for part in ("train", "val"):
        for c in ("smile", "no_smile"):
            (args.out / part / c).mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "val": 0}
    for src, y in zip(smiles.sources, smiles.labels, strict=True):
        src = str(Path(src).resolve())
        part = "val" if src in held else "train"
        os.symlink(src, args.out / part / smiles.classes[y] / f"smiles_{Path(src).name}")
        counts[part] += 1
    celeba = open_dataset(args.celeba_crops, attribute="Smiling")["all"]
    for src, y in zip(celeba.sources, celeba.labels, strict=True):
        c = "smile" if y == 1 else "no_smile"
        os.symlink(str(Path(src).resolve()), args.out / "train" / c / f"celeba_{Path(src).name}")
        counts["train"] += 1
    print(f"{counts['train']} training and {counts['val']} validation links in {args.out}")


if __name__ == "__main__":
    main()
