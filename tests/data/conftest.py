import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from .helpers import clean_tree, face, save


@pytest.fixture()
def defects(tmp_path) -> Path:
    root = tmp_path / "ds"
    clean_tree(root)
    t = root / "train"
    shutil.copy(t / "a" / "0.png", t / "a" / "0_copy.png")  # duplicate in a class
    shutil.copy(t / "a" / "1.png", t / "b" / "from_a.png")  # label conflict
    shutil.copy(t / "b" / "2.png", root / "val" / "b" / "leak.png")  # leakage
    # Near copies of train/a/3: re-encoded JPEG in val (near leakage) and blurred in train/b.
    a3 = np.asarray(Image.open(t / "a" / "3.png"))
    save(root / "val" / "a" / "a3_jpeg.jpg", a3, quality=70)
    save(t / "b" / "a3_blur.png", cv2.GaussianBlur(a3, (0, 0), 1.0))
    save(t / "a" / "black.png", np.zeros((48, 48), np.uint8))
    save(t / "b" / "grey.jpg", np.full((48, 48), 128, np.uint8))
    buf = io.BytesIO()
    Image.fromarray(face(99)).save(buf, "JPEG")
    (t / "a" / "cut.jpg").write_bytes(buf.getvalue()[:300])
    (t / "b" / "fake.png").write_text("not a png")
    (t / "b" / "notes.txt").write_text("labels were checked by hand")
    (t / "stray.png").write_bytes((t / "a" / "4.png").read_bytes() + b"")
    (t / "c").mkdir()
    (t / "a" / ".hidden.png").write_text("ignored")
    return root
