import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mien.cli.main import app, main

from .helpers import clean_tree, face, save

runner = CliRunner()


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_check_clean_exits_0(tmp_path):
    clean_tree(tmp_path / "ds")
    result = runner.invoke(app, ["data", "check", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "no findings" in result.output
    assert _exit_code(["data", "check", str(tmp_path / "ds")]) == 0


def test_check_findings_json_quarantine_restore(defects, tmp_path):
    out = tmp_path / "report.json"
    q = tmp_path / "q"
    result = runner.invoke(
        app, ["data", "check", str(defects), "--json", str(out), "--quarantine", str(q)]
    )
    assert result.exit_code == 1, result.output
    for kind in ("label_conflict", "leakage", "near_leakage", "unreadable", "near_constant"):
        assert kind in result.output
    report = json.loads(out.read_text())
    assert report["summary"]["label_conflict"] == 1
    files = {p for f in report["findings"] for p in f["files"]}
    assert "train/b/from_a.png" in files and "val/b/leak.png" in files
    assert not (defects / "val" / "b" / "leak.png").exists()
    (log,) = q.glob("quarantine-*.json")
    assert f"mien data restore {log}" in result.output.replace("\n", "")
    result = runner.invoke(app, ["data", "restore", str(log)])
    assert result.exit_code == 0 and "restored" in result.output
    assert (defects / "val" / "b" / "leak.png").exists()


def test_check_strict_and_near_threshold(tmp_path):
    for i in range(20):
        save(tmp_path / "many" / f"{i}.png", face(i))
    save(tmp_path / "few" / "0.png", face(50))
    assert runner.invoke(app, ["data", "check", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["data", "check", str(tmp_path), "--strict"]).exit_code == 1
    a = face(60)
    save(tmp_path / "few" / "1.jpg", a, quality=60)
    save(tmp_path / "few" / "2.png", a)
    assert runner.invoke(app, ["data", "check", str(tmp_path)]).exit_code == 1
    result = runner.invoke(app, ["data", "check", str(tmp_path), "--near-threshold", "-1"])
    assert result.exit_code == 0, result.output


def test_stats_table_and_grid(tmp_path):
    clean_tree(tmp_path / "ds")
    grid = tmp_path / "grid.png"
    result = runner.invoke(
        app, ["data", "stats", str(tmp_path / "ds"), "--grid", str(grid), "--per-class", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "val" in result.output and "18" in result.output
    img = np.asarray(Image.open(grid))
    assert img.shape[0] == 2 * (64 + 2) and img.shape[1] > 3 * 64
    # Image cells hold pictures (not the white background) in both class rows.
    assert img[:64, -64:].std() > 10 and img[66:130, -64:].std() > 10


@pytest.mark.parametrize(
    "setup, argv, message",
    [
        (lambda p: None, ["data", "check", "{p}/missing"], "missing: no such folder"),
        (lambda p: None, ["data", "stats", "{p}/missing"], "missing: no such file or folder"),
        (
            lambda p: (p / "ds" / "a").mkdir(parents=True),
            ["data", "stats", "{p}/ds"],
            "a: class folder has no image files",
        ),
        (
            lambda p: (p / "notes.txt").write_text("hi"),
            ["data", "stats", "{p}/notes.txt"],
            "notes.txt: not a dataset",
        ),
        (
            lambda p: (p / "fer.csv").write_text("emotion,pixels,Usage\n0,1 2 3,Training\n"),
            ["data", "stats", "{p}/fer.csv"],
            "fer.csv:row 2: pixels must be a square",
        ),
        (lambda p: None, ["data", "restore", "{p}/log.json"], "log.json: no such quarantine log"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, capsys, setup, argv, message):
    setup(tmp_path)
    argv = [a.format(p=tmp_path) for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code != 0 and message in str(result.exception)
    capsys.readouterr()
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1
