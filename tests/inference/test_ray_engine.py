"""`mien analyze --engine ray` on a local Ray cluster (`ray start --head`, 2 CPUs, started once
for the module; this process and one `mien analyze --address` subprocess connect to it): the
same rows as the local engine, shards skipped on rerun, inputs from a Parquet table and file://
URIs, unreadable inputs as error rows and bad options answered in one line."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mien.cli.main import main

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_ray():
    """The address of a 2-CPU Ray head started here, with this process connected to it."""
    ray = pytest.importorskip("ray")
    port = _free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    # Without token authentication (on by default for `ray start` since Ray 2.5x), which a
    # client reads from its environment when Ray is imported; the cluster listens on loopback.
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard", "false", "--node-ip-address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # the head answers on its port once it is up
            if head.poll() is not None:
                pytest.fail(f"`ray start --head` exited with {head.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("`ray start --head` did not come up in 120 s")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        ray.init(address=address, log_to_driver=False)
        yield address
    finally:
        ray.shutdown()
        head.send_signal(signal.SIGINT)  # --block stops the head's processes on SIGINT
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:  # seen once at the end of a full CI run: stop harder
            os.killpg(head.pid, signal.SIGKILL)  # the head and what it started (own session)
            head.wait(timeout=30)


def _env() -> dict:
    """This environment with this checkout first on the path, Ray's token auth and usage stats
    off."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": path}


@pytest.fixture
def folder(tmp_path, two_faces, group_photo, face_video):
    """Two photos with faces, one without, one unreadable, a 36-frame video and a collage whose
    quarter-size copy holds faces too small to judge."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(two_faces, folder / "a_two.jpg")
    shutil.copy(group_photo, folder / "b_three.jpg")
    Image.fromarray(np.full((90, 120, 3), 30, np.uint8)).save(folder / "c_blank.png")
    (folder / "d_broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    shutil.copy(face_video, folder / "e_clip.avi")
    photo = Image.open(two_faces).convert("RGB")
    collage = Image.new("RGB", (700, 520), (128, 128, 128))
    collage.paste(photo.resize((photo.width // 4, photo.height // 4)), (50, 50))
    collage.paste(photo, (250, 100))
    collage.save(folder / "f_collage.png")
    return folder


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.err


# Small shards and video ranges, so 5 inputs make 3 shards and the video spreads over 4 tasks;
# smoothing, so track state must carry across the ranges as it does in one pass.
RAY = ["--engine", "ray", "--shard-frames", "2", "--range-frames", "10", "--smooth", "0.5"]


def local_rows(inputs, tmp_path, capsys, *options):
    out = tmp_path / "local"
    code, err = run_cli(["analyze", *map(str, inputs), "--out", str(out), "--format", "parquet",
                         *options], capsys)
    return code, pd.read_parquet(out / "faces.parquet")


def test_same_rows_as_the_local_engine(local_ray, folder, tmp_path, capsys):
    code, expected = local_rows([folder], tmp_path, capsys, "--smooth", "0.5")
    assert code == 1  # d_broken.jpg
    out = tmp_path / "ray"
    code, err = run_cli(["analyze", str(folder), "--out", str(out), *RAY], capsys)
    assert code == 1 and "1 input(s) could not be read" in err, err
    assert "4 shards written, 0 already there (4 in all)" in err, err
    rows = pd.read_parquet(out / "faces")
    pd.testing.assert_frame_equal(rows, expected)
    assert (rows.status == "ok").sum() >= 5 + 36 and rows.track_id.notna().sum() >= 36
    assert (rows.status == "small").sum() >= 1 and rows[rows.status == "small"].smile.isna().all()
    # Nothing reported home: Ray's usage stats are off unless asked for, so Ray Data starts no
    # poller thread (it would outlive the run and, on Python 3.11, race `ast` in this process).
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert "data-usage-metrics-poller" not in {t.name for t in threading.enumerate()}

    # The same command again finds every shard written (and still exits 1 for d_broken.jpg).
    code, err = run_cli(["analyze", str(folder), "--out", str(out), *RAY], capsys)
    assert code == 1 and "0 shards written, 4 already there (4 in all)" in err, err

    # Other options make other rows: that folder is refused, not mixed in.
    code, err = run_cli(["analyze", str(folder), "--out", str(out), *RAY[:-2]], capsys)
    assert code == 2 and err.count("\n") == 1 and "holds the shards of another run" in err, err


def test_an_interrupted_run_keeps_whole_shards_and_a_rerun_does_the_rest(
        local_ray, folder, tmp_path, capsys):
    from mien.inference.pipeline import Pipeline
    from mien.inference.ray_engine import RayOptions, plan_shards, run_shards

    options = RayOptions(shard_frames=2, range_frames=10, memory_mb=256)
    plan = plan_shards([str(folder)], options=options)
    assert plan.shards == 4 and len(plan.items) == 5 + 4  # 5 photos, the video in 4 ranges
    pipeline = Pipeline(None, [])
    seen = []

    def stop_in_the_video(frames):
        seen.append(frames)
        if len(seen) == 10:  # the 4 photos, then 6 frames of the video's shard
            raise KeyboardInterrupt

    out = tmp_path / "ray" / "faces"
    work = dict(detector=None, detector_options={}, landmarks=None, options=options)
    with pytest.raises(KeyboardInterrupt):
        run_shards(plan, out, pipeline, [], progress=stop_in_the_video, **work)
    kept = sorted(out.iterdir())
    assert [p.name for p in kept] == [
        "_plan.json", "part-00000.parquet", "part-00001.parquet"]  # no partial shard
    before = [p.stat().st_mtime_ns for p in kept]

    # The rerun computes only the missing shards, and all of them hold the local engine's rows.
    counts = run_shards(plan, out, Pipeline(None, []), [], **work)
    assert (counts.shards_written, counts.shards_skipped, counts.frames) == (2, 2, 36 + 1)
    assert counts.errors == 1  # d_broken.jpg, in a shard written before
    assert [p.stat().st_mtime_ns for p in kept] == before
    _, expected = local_rows([folder], tmp_path, capsys, "--attributes", "")
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_a_parquet_table_of_paths_and_file_uris(local_ray, folder, tmp_path, capsys):
    missing = tmp_path / "nowhere.jpg"
    paths = [*sorted(str(p) for p in folder.glob("*.jpg")), str(missing)]
    table = tmp_path / "inputs.parquet"
    pd.DataFrame({"id": range(len(paths)), "file": paths}).to_parquet(table)
    _, expected = local_rows(paths, tmp_path, capsys, "--attributes", "smile")
    out = tmp_path / "from_table"
    code, err = run_cli(["analyze", str(table), "--path-column", "file", "--out", str(out),
                         "--attributes", "smile", *RAY], capsys)
    assert code == 1 and "2 input(s) could not be read" in err, err  # d_broken.jpg, missing
    rows = pd.read_parquet(out / "faces")
    pd.testing.assert_frame_equal(rows, expected)
    assert rows.message.iloc[-1] == f"{missing}: file not found; check the path"

    code, err = run_cli(["analyze", str(table), "--out", str(tmp_path / "x"), *RAY], capsys)
    assert code == 2 and err == (f"error: {table}: no column 'path' (it has id, file); pass "
                                 "--path-column NAME\n")

    # file:// URIs, by a `mien analyze` of its own that connects to the cluster (--address)
    uri = f"file://{folder}"
    _, expected = local_rows([uri], tmp_path, capsys, "--attributes", "smile", "--glob", "*.jpg")
    assert expected.source.str.startswith("file://").all() and len(expected) >= 5
    out = tmp_path / "from_uri"
    done = subprocess.run(
        [sys.executable, "-m", "mien.cli.main", "analyze", uri, "--glob", "*.jpg", "--out",
         str(out), "--attributes", "smile", "--address", local_ray, *RAY],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "2 shards written" in done.stderr, done.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out / "faces"), expected)


def test_bad_options_and_tables_fail_with_one_line(local_ray, tmp_path, capsys):
    missing, out = tmp_path / "nowhere.jpg", tmp_path / "out"
    for argv, message in [
        ([str(missing), "--engine", "ray"], "--engine ray writes Parquet shards: add --out DIR"),
        (["-", "--engine", "ray", "--out", str(out)], "-: the ray engine reads files and URIs"),
        ([str(missing), "--engine", "ray", "--out", str(out), "--format", "csv"],
         "--engine ray writes Parquet shards, not csv"),
        ([str(missing), "--engine", "spark", "--out", str(out)], "--engine 'spark': use local"),
        ([str(missing), "--engine", "ray", "--out", str(out), "--threads", "2"],
         "--threads is the local engine's"),
        ([str(tmp_path / "none.parquet"), "--engine", "ray", "--out", str(tmp_path / "o2")],
         "none.parquet: file not found"),
        ([str(missing), "--engine", "ray", "--out", str(tmp_path / "o3"), "--detect-actors",
          "2"], "2 detector and 1 classifier actors need 3 CPUs; the cluster has 2"),
    ]:
        code, err = run_cli(["analyze", *argv], capsys)
        assert code == 2 and err.startswith("error: ") and message in err, err
        assert err.count("\n") == 1, err


def test_the_engine_is_not_imported_without_being_asked_for():
    import subprocess
    import sys

    check = ("import sys, mien, mien.cli.main, mien.inference; "
             "assert 'ray' not in sys.modules and 'mien.inference.ray_engine' not in sys.modules")
    subprocess.run([sys.executable, "-c", check], check=True, env={**os.environ})


def test_a_worker_that_cannot_load_its_model_fails_in_one_line(local_ray, two_faces, tmp_path):
    """As on a node without the model file the driver has: the worker's MienError, as raised."""
    from mien.errors import MienError
    from mien.inference.pipeline import Pipeline
    from mien.inference.ray_engine import RayOptions, plan_shards, run_shards

    plan = plan_shards([str(two_faces)])
    missing = tmp_path / "elsewhere.onnx"
    with pytest.raises(MienError) as failure:
        run_shards(plan, tmp_path / "faces", Pipeline(None, []), [f"x={missing}"],
                   detector=None, detector_options={}, landmarks=None, options=RayOptions())
    assert str(failure.value) == f"{missing}: file not found; check the path"
    assert not list((tmp_path / "faces").glob("*part-*"))


def test_every_column_keeps_one_type_whatever_the_frames_hold(folder):
    """Ray puts blocks together only when their columns agree: an `error` column of nothing
    but None once became a float column and failed to unify with one holding a message."""
    import json

    from mien.inference.pipeline import Pipeline
    from mien.inference.ray_engine import Classify, Detect, _decode

    items = json.dumps([[0, 0, str(folder / "a_two.jpg"), 0, -1],
                        [1, 0, str(folder / "d_broken.jpg"), 0, -1],
                        [2, 0, str(folder / "e_clip.avi"), 30, -1]])
    frames = {k: sum((b[k] for b in _decode({"items": [items]}, every=1, fps=None,
                                               max_frames=None)), []) for k in ("error",
                                                                                "timestamp")}
    assert len(frames["error"]) == 1 + 1 + 6
    assert all(isinstance(e, str) for e in frames["error"]) and frames["error"][1]
    assert all(isinstance(t, float) for t in frames["timestamp"])

    pipeline = Pipeline(None, ["smile"])
    distinct = list(dict.fromkeys(pipeline.framings.values()))
    batch = next(_decode({"items": [items]}, every=1, fps=None, max_frames=None))
    detected = Detect(None, {}, None, distinct, pipeline.min_judged_face)(batch)
    assert all(isinstance(d, str) for d in detected["detector"]) and "" in detected["detector"]
    assert all(isinstance(f, bytes) for f in detected["face"]) and b"" in detected["face"]
    classified = Classify(["smile"], dict(pipeline.framings), distinct, None)(detected)
    assert all(isinstance(f, bytes) for f in classified["face"])
