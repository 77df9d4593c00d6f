"""Output-side failures of any command end in one line naming the path and the fix, and a
non-zero exit: a file where a folder should go, a path under /proc, a full disk on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mien.cli.main import main

ANALYZE = ["--attributes", "", "--detector", "haar"]  # no classifier files needed


@pytest.fixture
def blank(tmp_path) -> Path:
    """An image in a one-class dataset, tmp/data/dark/blank.png."""
    path = tmp_path / "data" / "dark" / "blank.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.full((60, 80, 3), 30, np.uint8)).save(path)
    return path


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_analyze_out_that_is_a_file(blank, tmp_path, capsys):
    taken = tmp_path / "existing.jpg"
    taken.write_bytes(b"not a folder")
    err = one_line_error(["analyze", blank, "--out", taken, *ANALYZE], capsys)
    assert f"{taken}: File exists; a file is in the way of a folder" in err
    err = one_line_error(["analyze", blank, "--out", taken / "sub", *ANALYZE], capsys)
    assert f"{taken / 'sub'}: Not a directory; part of the path is a file" in err
    assert taken.read_bytes() == b"not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_outputs_under_proc(blank, capsys):
    err = one_line_error(["analyze", blank, "--out", "/proc/mien-out", *ANALYZE], capsys)
    assert "/proc/mien-out: No such file or directory; check the path" in err
    err = one_line_error(["data", "check", blank.parents[1], "--json", "/proc/mien.json"], capsys)
    assert "/proc/mien.json: No such file or directory" in err


def test_data_check_json_into_a_folder(blank, tmp_path, capsys):
    err = one_line_error(["data", "check", blank.parents[1], "--json", tmp_path], capsys)
    assert f"{tmp_path}: Is a directory; it is a folder: give a file path" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_disk(blank):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "mien.cli.main", "analyze", str(blank),
                               *ANALYZE], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("error: standard output: No space left on device; the disk is full: "
                           "free some space or write elsewhere\n")
