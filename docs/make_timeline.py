"""The expression timeline PNG of the README: `mien analyze CLIP --out DIR --summary` on a short
clip that zooms slowly into a group photo (a still photo, so the expressions should stay put:
what moves in the plot is the model's answer changing with the face's size and framing).

    python docs/make_timeline.py [--photo ../shared/data/detection/voc_faces/2007_007763.jpg]
                                 [--out docs/video-timeline.png]

The photo is a PASCAL VOC image from dlib's examples (Boost Software License 1.0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))
FPS, SECONDS, ZOOM = 10, 4, 1.3


def write_clip(photo: Path, path: Path) -> None:
    """A FPS x SECONDS clip of `photo`, zooming in to 1/ZOOM of it around its centre."""
    import cv2

    from mien.data.io import decode_image
    from mien.inference.video import VideoWriter

    image = decode_image(photo.read_bytes(), "rgb", name=str(photo))
    h, w = image.shape[:2]
    writer = VideoWriter(path, FPS, w, h)
    try:
        for i in range(FPS * SECONDS):
            z = 1 + (ZOOM - 1) * i / (FPS * SECONDS - 1)
            x0, y0 = (w - w / z) / 2, (h - h / z) / 2
            m = np.float32([[z, 0, -x0 * z], [0, z, -y0 * z]])
            writer.write(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR))
    finally:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path,
                        default=DATA / "detection" / "voc_faces" / "2007_007763.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "video-timeline.png")
    args = parser.parse_args()
    if not args.photo.is_file():
        raise SystemExit(f"error: {args.photo}: no such photo; give --photo")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "zoom.mp4"
        write_clip(args.photo, clip)
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "mien.cli.main", "analyze", str(clip), "--out",
                        str(out), "--summary"], check=True, stdout=subprocess.DEVNULL)
        png = next(out.glob("*timeline*.png"))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.out)
        print(f"{args.out} (from {png.name}; summary: {out / 'summary.json'})")


if __name__ == "__main__":
    main()
