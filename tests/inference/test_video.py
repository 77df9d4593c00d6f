"""Annotated video files: H.264 through PyAV, which browsers play, and the mp4v fallback."""

from __future__ import annotations

import numpy as np
import pytest

from mien.errors import MienWarning
from mien.inference import video
from mien.inference.video import VideoWriter


def frames(n: int, width: int, height: int) -> list[np.ndarray]:
    return [np.full((height, width, 3), 10 * i, np.uint8) for i in range(n)]


def write(path, fps: float, pictures) -> None:
    height, width = pictures[0].shape[:2]
    writer = VideoWriter(path, fps, width, height)
    for picture in pictures:
        writer.write(picture)
    writer.close()


@pytest.mark.parametrize("width,height", [(64, 48), (101, 75)])  # odd sides are padded
def test_h264_with_every_frame_and_the_frame_rate(tmp_path, width, height):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    pictures = frames(20, width, height)
    write(path, 12.0, pictures)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"  # what browsers decode
        assert stream.average_rate == 12
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 20
    assert decoded[0].shape[:2] == (height + height % 2, width + width % 2)
    grey = [int(np.median(d)) for d in decoded]
    assert all(abs(g - 10 * i) <= 3 for i, g in enumerate(grey)), grey


def test_a_frame_of_another_size_is_refused(tmp_path):
    pytest.importorskip("av")
    writer = VideoWriter(tmp_path / "clip.mp4", 10.0, 64, 48)
    with pytest.raises(ValueError, match="frame of 32x48 for a video of 64x48"):
        writer.write(np.zeros((48, 32, 3), np.uint8))
    writer.close()


def test_without_pyav_opencv_writes_mp4v_and_says_how_to_get_h264(tmp_path, monkeypatch):
    import cv2

    monkeypatch.setattr(video, "h264_available", lambda: False)
    path = tmp_path / "clip.mp4"
    with pytest.warns(MienWarning, match=r"pip install 'mien\[video\]'"):
        write(path, 10.0, frames(5, 64, 48))
    capture = cv2.VideoCapture(str(path))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
    assert fourcc in (b"mp4v", b"FMP4")  # MPEG-4 Part 2; OpenCV reads it back by FFmpeg's tag
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    capture.release()
