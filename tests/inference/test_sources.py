"""Video frame sources: a file that ends before its container said it would is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mien.cli.main import main
from mien.inference.sources import video_frames, video_ranges


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


def _same(a, b):
    return [(f.index, f.timestamp, f.error) for f in a] == [
        (f.index, f.timestamp, f.error) for f in b] and all(
        x.image is None and y.image is None or np.array_equal(x.image, y.image)
        for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("options", [{}, {"every": 4}, {"fps": 5.0}, {"fps": 5.0, "max_frames": 7}])
def test_video_ranges_decode_exactly_one_pass(face_video, options):
    whole = list(video_frames(str(face_video), **options))
    ranges = video_ranges(str(face_video), frames=3, **options)
    assert len(ranges) > 2 and ranges[-1][1] is None
    parts = [f for start, stop in ranges
             for f in video_frames(str(face_video), start=start, stop=stop, **options)]
    assert _same(parts, whole)


def test_only_the_range_holding_the_end_reports_a_truncated_video(truncated_video):
    whole = list(video_frames(str(truncated_video)))
    ranges = video_ranges(str(truncated_video), frames=5)  # planned from the header's 36
    assert len(ranges) == 8
    parts = [f for start, stop in ranges
             for f in video_frames(str(truncated_video), start=start, stop=stop)]
    assert _same(parts, whole) and parts[-1].error and "probably truncated" in parts[-1].error
    # A truncated file that ends exactly where a range starts: that range reports it.
    end = len(whole) - 1
    parts = [f for start, stop in [(0, end), (end, None)]
             for f in video_frames(str(truncated_video), start=start, stop=stop)]
    assert _same(parts, whole)


def test_a_video_that_cannot_be_opened_is_one_range(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    assert video_ranges(str(broken)) == [(0, None)]
    assert video_ranges("memory://clip.mp4") == [(0, None)]


def test_a_video_behind_a_uri_reads_as_the_file(face_video, tmp_path):
    pytest.importorskip("fsspec")
    from mien.inference.sources import iter_frames

    uri = f"file://{face_video}"
    frames = list(iter_frames([uri], every=5))
    assert {f.source for f in frames} == {uri}
    assert _same(frames, list(video_frames(str(face_video), every=5)))
    (missing,) = iter_frames([f"file://{tmp_path}/gone.mp4"])
    assert missing.image is None and missing.error == (
        f"file://{tmp_path}/gone.mp4: file not found; check the path")
