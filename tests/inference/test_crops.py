"""Face crops as files: `CropWriter` (`mien analyze --save-crops`) and `crop_folder`
(`mien data crop`), cut by the pipeline as its classifiers read faces."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mien.cli.main import main
from mien.data.datasets import open_dataset
from mien.data.io import read_image
from mien.data.preprocess import Framing
from mien.errors import DatasetError
from mien.inference.align import crop_face
from mien.inference.crops import CropWriter, crop_folder
from mien.inference.pipeline import Pipeline
from mien.inference.sources import Frame
from mien.types import Box, Face


class BrightFaces:
    """A stand-in detector: in a picture brighter than mid-grey, a small face at the top left
    and a larger one at the bottom right; none in a dark picture."""

    name = "bright"

    def detect(self, image):
        if image.mean() < 128:
            return []
        return [Face(Box(4, 4, 24, 24), 0.9), Face(Box(30, 20, 70, 60), 0.8)]


def picture(level: int, size=(80, 96)) -> np.ndarray:
    rng = np.random.default_rng(level)
    noise = rng.integers(-20, 21, (*size, 3))
    return np.clip(level + noise, 0, 255).astype(np.uint8)


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def test_pipeline_crop_framing_is_the_first_attributes_or_the_default(brightness_onnx):
    from tiny_classifiers import BrightnessClassifier

    clf = BrightnessClassifier(brightness_onnx)
    clf.framing = Framing(margin=0.5, align=False)
    assert Pipeline(BrightFaces(), {"light": clf}).crop_framing == Framing(0.5, False)
    assert Pipeline(BrightFaces(), {}).crop_framing == Framing()
    assert Pipeline(BrightFaces(), {}, margin=0.0, align=False).crop_framing == Framing(0.0, False)


def test_crop_writer_names_each_crop_by_source_frame_and_face(tmp_path):
    pipeline = Pipeline(BrightFaces(), {}, margin=0.1)
    writer = CropWriter(tmp_path / "crops", pipeline)
    image = picture(200)
    faces = pipeline.detect(image)
    still = writer.add(Frame("in/photo.jpg", 0, None, image), faces)
    other = writer.add(Frame("elsewhere/photo.png", 0, None, image), faces[:1])
    video = writer.add(Frame("clip.mp4", 120, 4.8, image, stream=True), faces)
    assert writer.add(Frame("dark.jpg", 0, None, picture(40)), []) == []
    assert writer.add(Frame("broken.jpg", 0, None, None, "unreadable"), faces) == []
    assert [p.name for p in still + other + video] == [
        "photo_0.png", "photo_1.png", "photo_1_0.png", "clip_f000120_0.png", "clip_f000120_1.png"]
    assert writer.written == 5
    want = pipeline.crop(image, faces, Framing(0.1, True))
    for path, crop in zip(still, want, strict=True):
        np.testing.assert_array_equal(read_image(path), crop)  # PNG: exactly what was cut


@pytest.fixture
def photo_tree(tmp_path):
    """SRC/{train,val}/<class>/...: bright photos with faces, a dark one, a broken file."""
    src = tmp_path / "src"
    for rel, level in [("train/happy/a.png", 200), ("train/happy/deeper/b.jpg", 210),
                       ("train/sad/c.png", 190), ("train/sad/dark.png", 30),
                       ("val/happy/d.png", 220), ("val/sad/e.png", 180)]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(level)).save(src / rel, quality=95)
    (src / "val" / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return src


def test_crop_folder_keeps_the_tree_and_the_largest_face(photo_tree, tmp_path):
    pipeline = Pipeline(BrightFaces(), {})
    calls = []
    made = crop_folder(photo_tree, tmp_path / "dst", pipeline, Framing(0.0, False),
                       progress=lambda done, total: calls.append((done, total)))
    dst = tmp_path / "dst"
    assert made.written == 5 and calls[-1] == (7, 7)
    assert [p.endswith("dark.png") for p in made.no_face] == [True]
    assert len(made.unreadable) == 1 and "broken.jpg" in made.unreadable[0]
    written = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert written == ["train/happy/a.png", "train/happy/deeper/b.jpg", "train/sad/c.png",
                       "val/happy/d.png", "val/sad/e.png"]
    splits = open_dataset(dst)  # a training set as mien reads it
    assert set(splits) == {"train", "val"} and splits.classes == ("happy", "sad")
    source = read_image(photo_tree / "train/happy/a.png")
    largest = BrightFaces().detect(source)[1]
    want = pipeline.crop(source, [largest], Framing(0.0, False))[0]
    np.testing.assert_array_equal(read_image(dst / "train/happy/a.png"), want)
    assert want.shape == (40, 40, 3)  # the 40 px box, no margin

    with pytest.raises(DatasetError, match="not empty"):
        crop_folder(photo_tree, dst, pipeline)
    with pytest.raises(DatasetError, match="not a folder of class folders"):
        crop_folder(photo_tree / "train" / "happy" / "a.png", tmp_path / "new", pipeline)


def test_crop_folder_png_keeps_exactly_the_pixels_analyze_cuts(photo_tree, tmp_path):
    pipeline = Pipeline(BrightFaces(), {})
    dst = tmp_path / "png"
    made = crop_folder(photo_tree, dst, pipeline, Framing(0.1, True), png=True)
    written = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert made.written == 5 and written == [
        "train/happy/a.png.png", "train/happy/deeper/b.jpg.png", "train/sad/c.png.png",
        "val/happy/d.png.png", "val/sad/e.png.png"]
    source = read_image(photo_tree / "train/happy/deeper/b.jpg")
    largest = BrightFaces().detect(source)[1]
    want = pipeline.crop(source, [largest], Framing(0.1, True))[0]
    np.testing.assert_array_equal(read_image(dst / "train/happy/deeper/b.jpg.png"), want)
    assert open_dataset(dst).classes == ("happy", "sad")


def test_mien_data_crop_on_real_photos(shared_data, tmp_path, capsys):
    src = tmp_path / "photos"
    files = sorted((shared_data / "detection" / "genki_szsl" / "files").glob("*.jpg"))[:4]
    for i, path in enumerate(files):
        (src / ("smile" if i % 2 else "plain")).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, src / ("smile" if i % 2 else "plain") / path.name)
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(src / "plain" / "blank.png")
    dst = tmp_path / "crops"
    code, out, err = run_cli(["data", "crop", str(src), str(dst), "--detector", "haar",
                              "--margin", "0.3"], capsys)
    assert code == 0, err
    assert f"no face: {src / 'plain' / 'blank.png'}" in err
    crops = sorted(dst.rglob("*.jpg"))
    assert len(crops) >= 3 and "margin 0.3, align on, haar" in out
    assert f"{len(crops)} face crops" in out
    for crop in crops:
        image = read_image(crop)
        assert image.shape[0] == image.shape[1] >= 20  # square face crops
    code, out, err = run_cli(["data", "crop", str(src), str(tmp_path / "lossless"),
                              "--detector", "haar", "--margin", "0.3", "--png"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "lossless").rglob("*")
                  if p.is_file()) == sorted(f"{p.name}.png" for p in crops)


def test_analyze_save_crops_writes_one_file_per_face_row(two_faces, tmp_path, capsys):
    folder = tmp_path / "crops"
    code, out, err = run_cli(["analyze", str(two_faces), "--attributes", "",
                              "--save-crops", str(folder)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{two_faces.stem}_{r['face']}.png" for r in rows] and len(rows) == 2
    assert f"2 face crops -> {folder}" in err
    photo = read_image(two_faces)
    for r in rows:  # the crop of row r's face, as the pipeline cuts it
        face = Face(Box(r["x1"], r["y1"], r["x2"], r["y2"]), r["score"],
                    tuple(map(tuple, r["landmarks"] or ())))
        want = crop_face(photo, face, Framing().margin, align=Framing().align)
        got = read_image(folder / f"{two_faces.stem}_{r['face']}.png")
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want).mean() < 3  # rows keep boxes to 0.01 px
