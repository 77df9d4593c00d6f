"""Writing a video that browsers play: H.264 in MP4 through PyAV (the `video` extra, which
bundles FFmpeg with libx264). Without PyAV, OpenCV writes MPEG-4 Part 2 (mp4v), which players
such as VLC read but browsers do not; one warning says how to get H.264."""

from __future__ import annotations

import os
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from mien.errors import MienWarning

CODEC = "libx264"
QUALITY = "23"  # x264's default CRF: visually clean captions at a few hundred kB per minute


def h264_available() -> bool:
    try:
        import av
    except ImportError:
        return False
    return CODEC in av.codecs_available


class VideoWriter:
    """Appends uint8 RGB frames of one size to an MP4 file at a fixed frame rate."""

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int):
        self.path = Path(path)
        self.size = (width, height)
        if h264_available():
            import av

            # x264's 4:2:0 needs even sides; an odd edge row or column is repeated once.
            self._even = (width + width % 2, height + height % 2)
            # faststart: the index comes first, so a browser starts playing before the end.
            self._container = av.open(str(self.path), "w", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream(
                CODEC, rate=Fraction(fps).limit_denominator(1001))
            self._stream.width, self._stream.height = self._even
            self._stream.pix_fmt = "yuv420p"  # the one pixel format every browser decodes
            self._stream.options = {"crf": QUALITY}
            self._cv2 = None
            return
        import cv2

        warnings.warn(f"{self.path.name} is written as mp4v, which browsers do not play: "
                      "`pip install 'mien[video]'` writes H.264", MienWarning, stacklevel=2)
        self._cv2 = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                    (width, height))

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[1::-1] != self.size:
            raise ValueError(f"frame of {rgb.shape[1]}x{rgb.shape[0]} for a video of "
                             f"{self.size[0]}x{self.size[1]}")
        if self._cv2 is not None:
            import cv2

            self._cv2.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            return
        import av

        pad = ((0, self._even[1] - self.size[1]), (0, self._even[0] - self.size[0]), (0, 0))
        frame = av.VideoFrame.from_ndarray(np.pad(rgb, pad, mode="edge"), format="rgb24")
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        if self._cv2 is not None:
            self._cv2.release()
            return
        self._container.mux(self._stream.encode(None))  # flush the encoder's delayed frames
        self._container.close()
