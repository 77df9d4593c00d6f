import csv
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mien.data.celeba import open_celeba
from mien.data.datasets import (
    FER_CLASSES,
    ImageDataset,
    LabelSpec,
    apply_split_record,
    open_dataset,
    read_fer_csv,
    split_train_val,
    stratified_split,
)
from mien.data.io import read_image
from mien.errors import DatasetError


def _write(path: Path, value: int, size=(8, 8)) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full(size, value, np.uint8)
    arr[0, 0] = 255 - value  # keep each image distinct and non-constant
    Image.fromarray(arr).save(path)
    return arr


def _class_tree(root: Path, counts: dict[str, int], start: int = 0) -> dict[str, list[np.ndarray]]:
    out = {}
    for ci, (cls, n) in enumerate(counts.items()):
        out[cls] = [_write(root / cls / f"{i:03d}.png", start + ci * 40 + i) for i in range(n)]
    return out


def test_class_folder_layout(tmp_path):
    written = _class_tree(tmp_path, {"smile": 3, "no_smile": 5})
    (tmp_path / "smile" / "readme.txt").write_text("ignored: not an image")
    splits = open_dataset(tmp_path)
    assert list(splits) == ["all"]
    ds = splits["all"]
    assert ds.classes == ("no_smile", "smile")
    assert ds.counts() == {"no_smile": 5, "smile": 3}
    i = ds.sources.index(str(tmp_path / "smile" / "001.png"))
    assert ds.labels[i] == 1
    assert np.array_equal(ds.load(i, "gray"), written["smile"][1])
    assert ds.load(i).shape == (8, 8, 3)


def test_split_tree_layout_with_aliases(tmp_path):
    _class_tree(tmp_path / "train", {"a": 4, "b": 3})
    _class_tree(tmp_path / "validation", {"a": 2, "b": 1})
    _class_tree(tmp_path / "test", {"b": 2})  # a class absent from one split
    splits = open_dataset(tmp_path)
    assert list(splits) == ["train", "val", "test"]
    assert splits.classes == ("a", "b")
    assert splits["test"].counts() == {"a": 0, "b": 2}
    assert all(s.endswith(".png") and "/test/b/" in s for s in splits["test"].sources)
    train, val, record = split_train_val(splits)
    assert len(train) == 7 and len(val) == 3 and record is None


def test_train_only_tree_is_split(tmp_path):
    _class_tree(tmp_path / "train", {"a": 10, "b": 10})
    train, val, record = split_train_val(open_dataset(tmp_path), val_fraction=0.2, seed=0)
    assert len(val) == 4 and len(train) == 16 and record["seed"] == 0


def test_stratified_split_reproducible_from_record(tmp_path):
    _class_tree(tmp_path, {"a": 20, "b": 10, "c": 1})
    ds = open_dataset(tmp_path)["all"]
    train, val, record = stratified_split(ds, 0.2, seed=3)
    assert val.counts() == {"a": 4, "b": 2, "c": 0}  # stratified; a one-image class stays in train
    assert set(train.sources).isdisjoint(val.sources) and len(train) + len(val) == len(ds)
    again = stratified_split(ds, 0.2, seed=3)
    assert again[1].sources == val.sources
    assert stratified_split(ds, 0.2, seed=4)[1].sources != val.sources
    # The record is JSON and replays exactly, also through split_train_val.
    record = json.loads(json.dumps(record))
    t2, v2 = apply_split_record(ds, record)
    assert v2.sources == val.sources and t2.sources == train.sources
    t3, v3, rec3 = split_train_val({"all": ds}, record=record)
    assert v3.sources == val.sources and rec3 == record
    broken = dict(record, val_sources=record["val_sources"] + [str(tmp_path / "gone.png")])
    with pytest.raises(DatasetError, match="gone.png"):
        apply_split_record(ds, broken)
    with pytest.raises(DatasetError, match="between 0 and 1"):
        stratified_split(ds, 1.5)


def test_stratified_split_keeps_one_training_image_per_class(tmp_path):
    _class_tree(tmp_path, {"a": 2, "b": 6})
    train, val, _ = stratified_split(open_dataset(tmp_path)["all"], 0.9, seed=0)
    assert train.counts()["a"] == 1 and train.counts()["b"] >= 1


def test_missing_empty_and_bad_folders(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: no such file"):
        open_dataset(tmp_path / "nowhere")
    _class_tree(tmp_path / "ds", {"a": 2})
    (tmp_path / "ds" / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: class folder has no image files"):
        open_dataset(tmp_path / "ds")
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(DatasetError, match="flat: no class folders"):
        open_dataset(tmp_path / "flat")
    with pytest.raises(DatasetError, match="x.png: not a dataset"):
        open_dataset(tmp_path / "flat" / "x.png")
    _class_tree(tmp_path / "tree" / "train", {"a": 2})
    (tmp_path / "tree" / "train" / "b").mkdir()
    (tmp_path / "tree" / "val" / "b").mkdir(parents=True)
    with pytest.raises(DatasetError, match="'b' has no image files in any split"):
        open_dataset(tmp_path / "tree")


def test_label_spec_subset_merge_map_ignore(tmp_path):
    _class_tree(tmp_path, {"anger": 2, "disgust": 3, "happy": 4, "contempt": 1})
    spec = LabelSpec.parse(label_map="anger=angry", merge="disgust=angry", ignore="contempt")
    ds = open_dataset(tmp_path, labels=spec)["all"]
    assert ds.classes == ("angry", "happy")
    assert ds.counts() == {"angry": 5, "happy": 4}
    assert all("contempt" not in s for s in ds.sources)
    assert all(
        ds.classes[y] == "angry"
        for s, y in zip(ds.sources, ds.labels, strict=True)
        if "/disgust/" in s
    )
    sub = open_dataset(tmp_path, labels=LabelSpec.parse(classes="happy,anger"))["all"]
    assert sub.classes == ("happy", "anger") and sub.counts() == {"happy": 4, "anger": 2}
    with pytest.raises(DatasetError, match="sad not found"):
        open_dataset(tmp_path, labels=LabelSpec.parse(classes="happy,sad"))
    with pytest.raises(DatasetError, match="'disgst' is not in this dataset"):
        open_dataset(tmp_path, labels=LabelSpec.parse(merge="disgst=angry"))
    with pytest.raises(DatasetError, match="from=to"):
        LabelSpec.parse(merge="disgust")
    assert LabelSpec.parse().is_identity


def _fer_rows(shared_data: Path) -> list[tuple[int, str, str, np.ndarray]]:
    rows = []
    for usage, split in (("Training", "train"), ("PublicTest", "val"), ("PrivateTest", "val")):
        for label, cls in enumerate(FER_CLASSES):
            files = sorted((shared_data / "fer2013" / split / cls).iterdir())
            pick = files[:2] if usage != "PrivateTest" else files[-1:]
            for f in pick:
                rows.append((label, usage, f.name, read_image(f, "gray")))
    return rows


def _write_fer_csv(path: Path, rows, extra: list[list[str]] | None = None) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for label, usage, _, img in rows:
            w.writerow([label, " ".join(map(str, img.ravel())), usage])
        for r in extra or []:
            w.writerow(r)


def test_fer_csv_from_real_images(tmp_path, shared_data):
    rows = _fer_rows(shared_data)
    path = tmp_path / "fer2013.csv"
    _write_fer_csv(path, rows)
    splits = open_dataset(path)
    assert list(splits) == ["train", "val", "test"]
    assert splits.classes == FER_CLASSES
    assert splits["train"].counts() == dict.fromkeys(FER_CLASSES, 2)
    assert splits["test"].counts() == dict.fromkeys(FER_CLASSES, 1)
    test_rows = [r for r in rows if r[1] == "PrivateTest"]
    ds = splits["test"]
    assert ds.arrays.shape == (7, 48, 48) and ds.arrays.dtype == np.uint8
    for i, (label, _, _, img) in enumerate(test_rows):
        assert ds.labels[i] == label and np.array_equal(ds.load(i, "gray"), img)
    # Sources name the CSV row (header is row 1).
    assert splits["train"].sources[0] == f"{path}:row 2"
    assert ds.sources[0] == f"{path}:row {2 + len(rows) - 7}"
    only = read_fer_csv(path, usages=["test"])
    assert list(only) == ["test"]
    merged = open_dataset(path, labels=LabelSpec.parse(merge="disgust=angry"))
    assert "disgust" not in merged.classes and merged["train"].counts()["angry"] == 4


@pytest.mark.parametrize(
    "bad, message",
    [
        (["9", "1 2 3 4", "Training"], "emotion 9 is not in 0..6"),
        (["x", "1 2 3 4", "Training"], "malformed row"),
        (["0", "1 2 3", "Training"], "square image"),
        (["0", "", "Training"], "square image"),
        (["0", "1 2 3 999", "Training"], "square image"),
        (["0", "1 2 3 4", "Later"], "Usage 'Later'"),
        (["0", "1 2 3 4", "Training"], "a 2x2 image among 48x48"),
        (["0"], "malformed row"),
    ],
)
def test_fer_csv_bad_row_names_the_row(tmp_path, bad, message):
    img = np.zeros((48, 48), np.uint8)
    rows = [(0, "Training", "", img), (1, "Training", "", img)]
    path = tmp_path / "fer.csv"
    _write_fer_csv(path, rows, extra=[bad])
    with pytest.raises(DatasetError, match=f"fer.csv:row 4: .*{message}"):
        read_fer_csv(path)


def test_fer_csv_header_and_empty(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="other.csv: header"):
        read_fer_csv(path)
    path.write_text("")
    with pytest.raises(DatasetError, match="empty CSV"):
        read_fer_csv(path)
    path.write_text("emotion,pixels,Usage\n")
    with pytest.raises(DatasetError, match="no image rows"):
        read_fer_csv(path)


def test_fer_csv_streams(tmp_path):
    n = 600
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    path = tmp_path / "big.csv"
    _write_fer_csv(path, [(i % 7, "Training", "", imgs[i]) for i in range(n)])
    tracemalloc.start()
    try:
        splits = read_fer_csv(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(splits["train"].arrays, imgs)
    # The CSV text is ~3.5x the pixel bytes; streaming holds neither it nor a second copy of
    # the pixels (a list of row arrays stacked at the end would peak above 2x).
    assert peak < 1.6 * imgs.nbytes and path.stat().st_size > 3 * imgs.nbytes


def test_celeba_eyeglasses(shared_data):
    root = shared_data / "celeba"
    ds = open_celeba(root)
    assert ds.classes == ("no_eyeglasses", "eyeglasses")
    assert ds.counts() == {"no_eyeglasses": 9326, "eyeglasses": 674}
    assert Path(ds.sources[0]).name == "000001.jpg" and ds.load(0).shape[2] == 3
    splits = open_dataset(root, attribute="Smiling")
    assert splits["all"].counts() == {"no_smiling": 5178, "smiling": 4822}
    with pytest.raises(DatasetError, match="choose an attribute"):
        open_dataset(root)
    with pytest.raises(DatasetError, match="no attribute 'Glasses'.*Eyeglasses"):
        open_celeba(root, "Glasses")


def _celeba(root: Path, lines: list[str], images=("1.jpg", "2.jpg")) -> Path:
    (root / "img_align_celeba").mkdir(parents=True)
    for name in images:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "img_align_celeba" / name)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_generated_and_errors(tmp_path):
    root = _celeba(tmp_path / "ok", ["2", "Smiling Eyeglasses", "1.jpg 1 -1", "2.jpg -1  1"])
    ds = open_celeba(root, "eyeglasses")
    assert ds.labels.tolist() == [0, 1] and isinstance(ds, ImageDataset)
    bad = _celeba(tmp_path / "bad", ["2", "Smiling Eyeglasses", "1.jpg 1 -1", "2.jpg 0 1"])
    with pytest.raises(DatasetError, match="list_attr_celeba.txt:row 4"):
        open_celeba(bad)
    short = _celeba(tmp_path / "short", ["3", "Smiling Eyeglasses", "1.jpg 1 -1", "2.jpg 1 1"])
    with pytest.raises(DatasetError, match="announces 3 images"):
        open_celeba(short)
    gone = _celeba(tmp_path / "gone", ["2", "Eyeglasses", "1.jpg 1", "2.jpg -1"], images=("1.jpg",))
    with pytest.raises(DatasetError, match="1 image.*missing, e.g. 2.jpg"):
        open_celeba(gone)
    _class_tree(tmp_path / "plain", {"a": 1})
    with pytest.raises(DatasetError, match="no list_attr_celeba.txt"):
        open_dataset(tmp_path / "plain", attribute="Eyeglasses")


def test_celeba_attribute_targets(tmp_path):
    from mien.data.celeba import attribute_targets

    root = _celeba(tmp_path / "c", ["2", "Smiling Eyeglasses Male", "1.jpg 1 -1 -1",
                                    "2.jpg -1 1 1"])
    sources = [str(root / "img_align_celeba" / n) for n in ("2.jpg", "1.jpg")]
    names, t = attribute_targets(root, sources, exclude="eyeglasses")
    assert names == ("Smiling", "Male") and t.dtype == np.float32
    assert t.tolist() == [[0, 1], [1, 0]]  # rows follow `sources`, not the table
    names, t = attribute_targets(root, sources[:1], exclude="Eyeglasses", names="male")
    assert names == ("Male",) and t.tolist() == [[1]]
    with pytest.raises(DatasetError, match="no attribute 'Hat'.*Smiling"):
        attribute_targets(root, sources, exclude="Eyeglasses", names="Male,Hat")
    with pytest.raises(DatasetError, match="Eyeglasses is the attribute trained"):
        attribute_targets(root, sources, exclude="Eyeglasses", names="Eyeglasses")
    with pytest.raises(DatasetError, match="no row for image 9.jpg"):
        attribute_targets(root, [str(root / "img_align_celeba" / "9.jpg")], exclude="Male")


def test_shared_fer2013_folders(shared_data):
    splits = open_dataset(shared_data / "fer2013")
    assert len(splits["train"]) == 28709 and len(splits["val"]) == 3589
    assert splits["val"].counts()["disgust"] == 56
