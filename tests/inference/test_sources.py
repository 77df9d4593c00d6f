"""Video frame sources: a file that ends before its container said it would is reported."""

from __future__ import annotations

import json

import pytest

from mien.cli.main import main
from mien.inference.sources import video_frames


@pytest.fixture
def truncated_video(face_video, tmp_path):
    """The 36-frame MJPG AVI cut in half: its header still announces 36 frames."""
    data = face_video.read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_complete_video_has_no_error_frame(face_video):
    frames = list(video_frames(str(face_video)))
    assert [f.index for f in frames] == list(range(36))
    assert all(f.error is None for f in frames)


def test_a_truncated_video_ends_with_an_error_frame(truncated_video):
    *decoded, last = video_frames(str(truncated_video))
    assert 0 < len(decoded) < 36 and all(f.image is not None for f in decoded)
    assert last.image is None and last.index == len(decoded)
    assert last.error == (f"{truncated_video}: the video ended after {len(decoded)} of the 36 "
                          "frames its container announces, so the file is probably truncated; "
                          "re-download or re-encode it")
    # Stopping early on purpose is not a truncated file.
    assert all(f.error is None for f in video_frames(str(truncated_video), max_frames=3))


def test_analyze_marks_a_truncated_video_and_exits_1(truncated_video, models_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(truncated_video), "--attributes", "", "--detector", "haar"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 1, captured.err
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert rows[-1]["status"] == "error" and "probably truncated" in rows[-1]["message"]
    assert {r["status"] for r in rows[:-1]} <= {"ok", "no_face"} and len(rows) > 1
