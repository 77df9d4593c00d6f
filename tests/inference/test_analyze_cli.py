"""`mien analyze` in-process: formats and their columns, no-face and error rows, video with
tracks, annotated output, bad options."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mien.cli.main import main
from mien.inference.writers import BASE_COLUMNS


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


@pytest.fixture
def photos(tmp_path, two_faces, group_photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(two_faces, folder / "a_two.jpg")
    shutil.copy(group_photo, folder / "b_three.jpg")
    Image.fromarray(np.full((90, 120, 3), 30, np.uint8)).save(folder / "c_blank.png")
    (folder / "d_broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


@pytest.fixture
def light_model(brightness_onnx):
    return f"light={brightness_onnx}"


EXPECTED_COLUMNS = [*BASE_COLUMNS, "light", "light.dark", "light.bright"]


def _check_rows(rows):
    by_name = {}
    for r in rows:
        by_name.setdefault(r["source"].rsplit("/", 1)[-1], []).append(r)
    assert list(by_name) == ["a_two.jpg", "b_three.jpg", "c_blank.png", "d_broken.jpg"]
    assert [r["status"] for r in by_name["a_two.jpg"]] == ["ok", "ok"]
    assert len(by_name["b_three.jpg"]) == 3
    for r in by_name["a_two.jpg"] + by_name["b_three.jpg"]:
        assert r["light"] in ("dark", "bright")
        p = float(r["light.dark"]) + float(r["light.bright"])
        assert p == pytest.approx(1.0, abs=1e-4)
        assert float(r["x1"]) < float(r["x2"]) and float(r["y1"]) < float(r["y2"])
    (blank,) = by_name["c_blank.png"]
    assert blank["status"] == "no_face" and blank["light"] in (None, "")
    (broken,) = by_name["d_broken.jpg"]
    assert broken["status"] == "error" and "d_broken.jpg" in broken["message"]
    return by_name


def test_jsonl_to_stdout(photos, light_model, models_env, capsys):
    code, out, err = run_cli(["analyze", str(photos), "--attributes", light_model], capsys)
    assert code == 1 and "1 input(s) could not be read" in err, err  # d_broken.jpg
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(list(r) == EXPECTED_COLUMNS for r in rows)
    by_name = _check_rows(rows)
    lm = by_name["a_two.jpg"][0]["landmarks"]
    assert len(lm) == 5 and all(len(p) == 2 for p in lm)


def test_csv_and_parquet_files_share_columns(photos, light_model, models_env, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["analyze", str(photos), "--attributes", light_model, "--out", str(out), "--format", "csv"],
        capsys,
    )
    assert code == 1 and "1 input(s) could not be read" in err, err  # d_broken.jpg
    assert "5 faces" in err and "1 without a face" in err and "1 unreadable" in err
    with open(out / "faces.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == EXPECTED_COLUMNS
        rows = list(reader)
    by_name = _check_rows(rows)
    assert len(json.loads(by_name["a_two.jpg"][0]["landmarks"])) == 5

    pq = pytest.importorskip("pyarrow.parquet")
    code, _, err = run_cli(
        [
            "analyze",
            str(photos),
            "--attributes",
            light_model,
            "--out",
            str(out),
            "--format",
            "parquet",
        ],
        capsys,
    )
    assert code == 1 and "1 input(s) could not be read" in err, err  # d_broken.jpg
    table = pq.read_table(out / "faces.parquet")
    assert table.column_names == EXPECTED_COLUMNS
    assert str(table.schema.field("light.bright").type) == "double"
    _check_rows(table.to_pylist())


def test_video_rows_tracks_and_annotations(face_video, light_model, models_env, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(
        [
            "analyze",
            str(face_video),
            "--attributes",
            light_model,
            "--out",
            str(out),
            "--every",
            "2",
            "--annotate",
            "--smooth",
            "0.5",
        ],
        capsys,
    )
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert sorted({r["frame"] for r in rows}) == list(range(0, 36, 2))
    assert {r["track_id"] for r in rows} == {1, 2}
    tracks = json.loads((out / "tracks.json").read_text())
    assert sorted(t["frames"] for t in tracks) == [18, 18]
    assert all(set(t["dominant"]) == {"light"} for t in tracks)
    av = pytest.importorskip("av")
    with av.open(str(out / "annotated" / "faces.mp4")) as video:
        stream = video.streams.video[0]
        assert stream.codec_context.name == "h264"  # browsers play it; mp4v they do not
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(stream)]
    assert len(frames) == 18 and frames[0].shape[:2] == (480, 360)


def test_video_summary_and_timeline(face_video, light_model, models_env, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(["analyze", str(face_video), "--attributes", light_model, "--out",
                            str(out), "--every", "3", "--summary"], capsys)
    assert code == 0, err
    (video,) = json.loads((out / "summary.json").read_text())
    assert video["source"] == str(face_video)
    assert video["frames"] == 12 and video["face_frames"] == 24
    assert sum(video["shares"]["light"].values()) == pytest.approx(1.0)
    assert sorted(t["track_id"] for t in video["tracks"]) == [1, 2]
    timeline = Image.open(out / "faces_timeline.png")
    assert timeline.width >= 800 and timeline.height >= 300


def test_summary_needs_out(face_video, capsys):
    code, _, err = run_cli(["analyze", str(face_video), "--summary"], capsys)
    assert code == 2 and "--summary writes files: add --out DIR" in err


def test_annotated_image_has_boxes_where_faces_are(
    two_faces, light_model, models_env, tmp_path, capsys
):
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["analyze", str(two_faces), "--attributes", light_model, "--out", str(out), "--annotate"],
        capsys,
    )
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    drawn = np.asarray(Image.open(out / "annotated" / "2008_001009.jpg")).astype(int)
    original = np.asarray(Image.open(two_faces)).astype(int)
    changed = np.abs(drawn - original).sum(axis=2) > 120
    for r in rows:  # the box's left edge is drawn, the face's middle is not
        x1, y1, x2, y2 = (int(r[k]) for k in ("x1", "y1", "x2", "y2"))
        assert changed[y1 + 5 : y2 - 5, x1].mean() > 0.8
        assert changed[(y1 + y2) // 2, x1 + 8 : x2 - 8].mean() < 0.2


def test_bad_options_fail_with_one_line(photos, models_env, tmp_path, capsys):
    cases = [
        (["analyze", str(photos), "--format", "xml"], "--format 'xml'"),
        (["analyze", str(photos), "--annotate"], "--annotate writes files"),
        (["analyze", str(photos), "--detector", "nope"], "unknown detector 'nope'"),
        (["analyze", str(photos), "--attributes", "x=missing.onnx"], "missing.onnx"),
        (["analyze"], "nothing to analyze"),
        (["analyze", str(tmp_path / "empty_dir_missing"), "--attributes", ""], None),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["analyze", str(tmp_path / "empty"), "--attributes", ""], "no image or video"))
    for argv, message in cases:
        code, out, err = run_cli(argv, capsys)
        if message is None:  # a missing file is an error row, and the exit code says so
            assert code == 1 and json.loads(out)["status"] == "error"
            continue
        assert code != 0 and message in err and "Traceback" not in err, (argv, err)


def test_min_confidence_labels_low_answers_uncertain(two_faces, light_model, models_env,
                                                     capsys):
    from typer.testing import CliRunner

    from mien.cli.main import app

    def rows(*extra):
        result = CliRunner().invoke(app, ["analyze", str(two_faces), "--attributes",
                                          light_model, *extra])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    plain, none, every = rows(), rows("--min-confidence", "0"), rows("--min-confidence", "1")
    assert len(plain) == 2 and all(r["light"] in ("dark", "bright") for r in plain)
    assert none == plain
    assert [r["light"] for r in every] == ["uncertain", "uncertain"]
    # the probabilities stay, so the answer can still be read
    assert [r["light.bright"] for r in every] == [r["light.bright"] for r in plain]
    code, out, err = run_cli(["analyze", str(two_faces), "--min-confidence", "1.5"], capsys)
    assert code != 0 and out == ""
    assert err.strip() == "error: min_confidence 1.5: use a probability in [0, 1]"


def test_stdin_glob_and_a_camera_that_cannot_open(
    photos, two_faces, models_env, monkeypatch, capsys
):
    import io
    import types

    monkeypatch.setattr(
        "sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(two_faces.read_bytes()))
    )
    code, out, err = run_cli(["analyze", "-", "--attributes", ""], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["source"], r["status"], r["face"]) for r in rows] == [("-", "ok", 0), ("-", "ok", 1)]

    code, out, err = run_cli(
        ["analyze", str(photos), "--glob", "*.png", "--attributes", ""], capsys
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["source"].rsplit("/", 1)[-1] for r in rows] == ["c_blank.png"]

    code, out, err = run_cli(["analyze", "--camera", "97", "--attributes", ""], capsys)
    assert code == 1, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["source"] == "camera:97" and row["status"] == "error"
    assert "cannot open camera 97" in row["message"]


def test_rows_name_the_detector_and_a_replacement_is_announced_once(
        photos, two_faces, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["analyze", str(two_faces), "--attributes", ""], capsys)
    assert code == 0 and "warning" not in err, err
    assert [r["detector"] for r in map(json.loads, out.splitlines())] == ["yunet", "yunet"]

    from mien.detection import files  # YuNet's bundled file gone: Haar runs instead

    monkeypatch.setattr(files, "bundled_model_file", lambda name: tmp_path / "gone.onnx")
    code, out, err = run_cli(["analyze", str(photos), "--attributes", ""], capsys)
    assert code == 1  # d_broken.jpg
    assert err.count("warning: detector 'yunet' is not available") == 1, err
    assert "running 'haar' instead" in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["detector"] for r in rows if r["status"] != "error"} == {"haar"}
    assert [r["detector"] for r in rows if r["status"] == "error"] == [None]


def test_threshold_below_the_bound_fails_with_one_line(two_faces, capsys):
    code, out, err = run_cli(["analyze", str(two_faces), "--threshold", "0", "--min-face", "1"],
                             capsys)
    assert code == 2 and out == ""
    assert err == ("error: score threshold 0.0: use a value in [0.05, 1] (lower ones let noise "
                   "pass for thousands of faces)\n")


@pytest.mark.parametrize("picture", ["genki", "noise"])
def test_lowest_threshold_with_annotations_finishes_quickly(
        picture, shared_data, light_model, tmp_path, capsys):
    """Issue 16: the GENKI photo crashed the batch while drawing; 640x640 noise gave 4,520
    "faces" and kept a worker busy for 42 s."""
    import time

    if picture == "genki":
        path = shared_data / "detection" / "genki_szsl" / "files" / "file0001.jpg"
    else:
        path = tmp_path / "noise.jpg"
        noise = np.random.default_rng(16).integers(0, 256, (640, 640, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path, quality=95)
    out = tmp_path / "out"
    start = time.perf_counter()
    code, _, err = run_cli(["analyze", str(path), "--threshold", "0.05", "--min-face", "1",
                            "--attributes", light_model, "--annotate", "--out", str(out)], capsys)
    assert code == 0, err
    assert time.perf_counter() - start < 20
    rows = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert 1 <= len(rows) <= 200 and all(r["status"] in ("ok", "small") for r in rows)
    width, height = Image.open(path).size
    for r in rows:
        assert 0 <= r["x1"] < r["x2"] <= width and 0 <= r["y1"] < r["y2"] <= height
    assert (out / "annotated" / f"{path.stem}.jpg").is_file()


def test_ctrl_c_says_where_the_rows_so_far_are(photos, light_model, models_env, tmp_path,
                                               capsys, monkeypatch):
    """Ctrl-C during an analysis: exit 130, one line saying how far it got, rows kept."""
    from mien.inference.pipeline import Pipeline

    real = Pipeline.run_frames

    def interrupted_after_one(self, *args, **kwargs):
        frames = real(self, *args, **kwargs)
        yield next(frames)
        frames.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(Pipeline, "run_frames", interrupted_after_one)
    out = tmp_path / "out"
    code, _, err = run_cli(["analyze", str(photos), "--attributes", light_model, "--out",
                            str(out)], capsys)
    assert code == 130
    assert f"interrupted after 1 frames: their rows are in {out}; run the command again" in err
    rows = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert [r["source"].rsplit("/", 1)[-1] for r in rows] == ["a_two.jpg", "a_two.jpg"]
