"""`expected_frames`: the progress bar's total for `mien analyze` equals what `iter_frames`
yields, for stills, folders and sampled videos; None for a camera or stdin."""

from __future__ import annotations

import shutil

import pytest

from mien.inference.sources import expected_frames, iter_frames


@pytest.mark.parametrize("options", [
    {}, {"every": 5}, {"fps": 4.0}, {"max_frames": 10}, {"every": 2, "max_frames": 100},
])
def test_expected_frames_match_the_frames_read(face_video, two_faces, tmp_path, options):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(two_faces, folder / "a.jpg")
    shutil.copy(face_video, folder / "b.avi")
    (folder / "c.png").write_bytes(b"not a png")  # an error frame still counts
    inputs = [str(folder), str(two_faces)]
    read = sum(1 for _ in iter_frames(inputs, **options))
    assert expected_frames(inputs, **options) == read
    assert read > 3


def test_a_camera_or_stdin_has_no_known_length(two_faces):
    assert expected_frames([str(two_faces), "camera:0"]) is None
    assert expected_frames(["-"]) is None
