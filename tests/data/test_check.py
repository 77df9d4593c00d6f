import json
import shutil
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from mien.data import check as C
from mien.errors import DatasetError

from .helpers import clean_tree, face, save


def _by_kind(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.kind, []).append(f)
    return out


def test_clean_dataset_has_no_findings(tmp_path):
    clean_tree(tmp_path)
    report = C.check_dataset(tmp_path)
    assert report.findings == ()
    assert not report.failed(strict=True)
    assert report.counts == {"train": {"a": 6, "b": 6}, "val": {"a": 3, "b": 3}}
    assert report.sizes == {"48x48": 18} and report.files_scanned == 18


def test_finds_every_planted_defect(defects):
    report = C.check_dataset(defects)
    k = _by_kind(report)
    assert [f.files for f in k["duplicate"]] == [("train/a/0.png", "train/a/0_copy.png")]
    (conflict,) = k["label_conflict"]
    assert conflict.files == ("train/a/1.png", "train/b/from_a.png")
    assert conflict.classes == ("a", "b") and conflict.severity == "error"
    (leak,) = k["leakage"]
    assert leak.files == ("train/b/2.png", "val/b/leak.png") and leak.splits == ("train", "val")
    (near,) = k["near_leakage"]
    assert set(near.files) == {"train/a/3.png", "train/b/a3_blur.png", "val/a/a3_jpeg.jpg"}
    assert near.files[0] == "train/a/3.png" and near.classes == ("a", "b")
    assert {f.files[0] for f in k["near_constant"]} == {"train/a/black.png", "train/b/grey.jpg"}
    assert {f.files[0] for f in k["unreadable"]} == {"train/a/cut.jpg", "train/b/fake.png"}
    assert "truncated" in next(f.detail for f in k["unreadable"] if "cut" in f.files[0])
    assert [f.files for f in k["not_image"]] == [("train/b/notes.txt",)]
    assert [f.files for f in k["misplaced"]] == [("train/stray.png",)]
    assert [f.files for f in k["empty_class"]] == [("train/c",)]
    assert "blurry" not in k and "class_imbalance" not in k
    assert not any(".hidden" in p for f in report.findings for p in f.files)
    assert report.failed()
    with pytest.raises(AttributeError):
        conflict.kind = "x"  # findings are frozen
    # Without the near search only the exact copies remain.
    assert "near_leakage" not in _by_kind(C.check_dataset(defects, near_threshold=None))
    json.dumps(report.to_dict())


def test_blur_sharpness_shift_and_imbalance(tmp_path):
    for i in range(30):
        save(tmp_path / "train" / "big" / f"{i}.png", cv2.GaussianBlur(face(i), (0, 0), 4))
    for i in range(2):
        save(tmp_path / "train" / "small" / f"{i}.png", cv2.GaussianBlur(face(100 + i), (0, 0), 4))
    for i in range(4):
        save(tmp_path / "val" / "big" / f"{i}.png", face(200 + i))
        save(tmp_path / "val" / "small" / f"{i}.png", face(300 + i))
    report = C.check_dataset(tmp_path, near_threshold=None)
    k = _by_kind(report)
    assert sum(len(f.files) for f in k["blurry"]) == 32
    assert all(f.splits == ("train",) for f in k["blurry"])
    (shift,) = k["sharpness_shift"]
    assert (
        shift.splits == ("train", "val")
        and report.sharpness["val"] > 10 * report.sharpness["train"]
    )
    (imb,) = k["class_imbalance"]
    assert imb.classes == ("small", "big") and imb.severity == "note"


def test_imbalance_alone_fails_only_when_strict(tmp_path):
    for i in range(20):
        save(tmp_path / "many" / f"{i}.png", face(i))
    save(tmp_path / "few" / "0.png", face(50))
    report = C.check_dataset(tmp_path)
    assert report.summary() == {"class_imbalance": 1}
    assert not report.failed() and report.failed(strict=True)


def test_phash_and_match_score():
    a, b = face(1), face(2)
    thumbs = np.stack(
        [
            cv2.resize(x, (32, 32), interpolation=cv2.INTER_AREA)
            for x in (a, np.clip(a.astype(int) + 25, 0, 255).astype(np.uint8), b)
        ]
    )
    h = C.phash(thumbs)
    assert h.dtype == np.uint64 and bin(int(h[0])).count("1") == 32
    assert bin(int(h[0] ^ h[1])).count("1") <= 2  # brightness does not move the hash
    assert bin(int(h[0] ^ h[2])).count("1") >= 12
    ta, tb = thumbs[0], thumbs[2]
    assert C.match_score(ta, ta) > 0.999
    assert C.match_score(ta, cv2.GaussianBlur(ta, (0, 0), 1.5)) > 0.97
    assert C.match_score(cv2.GaussianBlur(ta, (0, 0), 1.5), ta) > 0.97
    assert C.match_score(ta, tb) < 0.8
    assert C.sharpness(cv2.GaussianBlur(a, (0, 0), 2)) < C.sharpness(a) / 5


def test_hamming_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 700, dtype=np.uint64)
    h[500] = h[3] ^ np.uint64(0b101)  # distance 2
    h[650] = h[3]  # distance 0
    h[10] = h[600] ^ np.uint64(0b1111)  # distance 4
    i, j, d = C.hamming_pairs(h, 4, block=64)
    got = set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
    brute = {
        (a, b, bin(int(h[a] ^ h[b])).count("1"))
        for a in range(len(h))
        for b in range(a + 1, len(h))
        if bin(int(h[a] ^ h[b])).count("1") <= 4
    }
    assert got == brute and {(3, 500, 2), (3, 650, 0), (10, 600, 4), (500, 650, 2)} <= got


def test_quarantine_and_restore(defects, tmp_path):
    before = {
        p.relative_to(defects).as_posix(): p.read_bytes() for p in defects.rglob("*") if p.is_file()
    }
    report = C.check_dataset(defects)
    dest = tmp_path / "q"
    result = C.quarantine(report, dest)
    moved = set(result.moved)
    # One copy of every duplicate group stays: the first listed (train first).
    assert {"train/a/0_copy.png", "train/b/from_a.png", "val/b/leak.png"} <= moved
    assert not {"train/a/0.png", "train/a/1.png", "train/b/2.png", "train/a/3.png"} & moved
    assert {
        "train/b/a3_blur.png",
        "val/a/a3_jpeg.jpg",
        "train/a/black.png",
        "train/a/cut.jpg",
        "train/b/notes.txt",
        "train/stray.png",
    } <= moved
    for rel in moved:
        assert not (defects / rel).exists() and (dest / rel).read_bytes() == before[rel]
    log = json.loads(result.log.read_text())
    assert {m["file"] for m in log["moved"]} == moved and result.log.parent == dest
    after = C.check_dataset(defects)
    assert set(after.summary()) == {"empty_class"}
    # restore puts back every byte
    assert set(C.restore(result.log)) == moved
    now = {
        p.relative_to(defects).as_posix(): p.read_bytes() for p in defects.rglob("*") if p.is_file()
    }
    assert now == before
    assert not any(p.is_file() for p in dest.rglob("*") if p != result.log)
    with pytest.raises(DatasetError, match="already restored"):
        C.restore(result.log)


def test_quarantine_refuses_unsafe_places(defects, tmp_path):
    report = C.check_dataset(defects, near_threshold=None)
    with pytest.raises(DatasetError, match="inside the dataset"):
        C.quarantine(report, defects / "quarantine")
    result = C.quarantine(report, tmp_path / "q")
    (defects / result.moved[0]).write_bytes(b"new file in the way")
    with pytest.raises(DatasetError, match="already there.*nothing restored"):
        C.restore(result.log)
    assert all((tmp_path / "q" / rel).exists() for rel in result.moved)  # nothing moved back
    with pytest.raises(DatasetError, match="no such quarantine log"):
        C.restore(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="not a mien quarantine log"):
        C.restore(tmp_path / "junk.json")


def test_check_errors(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: no such folder"):
        C.check_dataset(tmp_path / "nowhere")
    save(tmp_path / "flat" / "x.png", face(0))
    with pytest.raises(DatasetError, match="no class folders"):
        C.check_dataset(tmp_path / "flat")


def test_smiles_defects(shared_data):
    report = C.check_dataset(shared_data / "smiles")
    k = _by_kind(report)
    conflicts = k["label_conflict"]
    assert len(conflicts) == 5
    assert all(len(f.files) == 2 and f.classes == ("no_smile", "smile") for f in conflicts)
    dups = k["duplicate"]
    assert len(dups) == 2 and all(f.classes == ("no_smile",) and len(f.files) == 2 for f in dups)
    assert "unreadable" not in k and "near_constant" not in k and "leakage" not in k


@pytest.mark.slow
def test_fer2013_defects_and_speed(shared_data):
    t0 = time.perf_counter()
    report = C.check_dataset(shared_data / "fer2013")
    seconds = time.perf_counter() - t0
    k = _by_kind(report)
    # ../shared/data/README.md: about 1,035 byte-identical groups inside train (39 with
    # conflicting labels); 280 val images byte-identical to train images.
    inside_train = k["duplicate"] + k["label_conflict"]
    assert 950 <= len(inside_train) <= 1100
    assert len(k["label_conflict"]) + sum(len(f.classes) > 1 for f in k["leakage"]) >= 10
    assert all(f.splits == ("train", "val") for f in k["leakage"])
    leaked_val = {p for f in k["leakage"] for p in f.files if p.startswith("val/")}
    assert len(leaked_val) == 280
    # train is the sharp original since 2026-12-03: no sharpness shift between the splits
    assert "sharpness_shift" not in k
    assert len(k["near_constant"]) == 13
    assert report.files_scanned == 32298
    assert seconds < 120


def test_quarantine_keeps_one_copy_of_near_group_holding_exact_copies(tmp_path):
    clean_tree(tmp_path / "ds")
    root = tmp_path / "ds"
    shutil.copy(root / "val" / "a" / "0.png", root / "val" / "a" / "0_copy.png")
    blurred = cv2.GaussianBlur(np.asarray(Image.open(root / "val" / "a" / "0.png")), (0, 0), 1)
    save(root / "train" / "b" / "blurred.png", blurred)
    report = C.check_dataset(root)
    assert set(report.summary()) == {"duplicate", "near_leakage"}
    moved = set(C.quarantine(report, tmp_path / "q").moved)
    assert moved == {"val/a/0.png", "val/a/0_copy.png"}
    assert (root / "train" / "b" / "blurred.png").exists()
