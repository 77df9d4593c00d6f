"""Property tests of image decoding: whatever bytes arrive (random, truncated or odd-mode real
encodings), `decode_image` and the HTTP upload checks give uint8 pixels of the promised layout
or mien's own one-line error, never another exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mien.api.errors import ApiError
from mien.api.uploads import check_pixels, check_upload
from mien.data.io import decode_image
from mien.errors import MienError

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Bytes per pixel of the raw data `Image.frombytes` takes for each mode ("1" packs 8 per byte).
MODES = {"L": 1, "LA": 2, "P": 1, "RGB": 3, "RGBA": 4, "I;16": 2, "1": 0, "CMYK": 4}
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00",
          b"RIFF\x00\x00\x00\x00WEBP")


def _check_decoded(arr: np.ndarray, mode: str, shape: tuple[int, int] | None = None) -> None:
    assert arr.dtype == np.uint8
    assert arr.ndim == (3 if mode == "rgb" else 2)
    if mode == "rgb":
        assert arr.shape[2] == 3
    assert arr.shape[0] >= 1 and arr.shape[1] >= 1
    if shape is not None:
        assert arr.shape[:2] == shape


def decode_or_refuse(data: bytes, mode: str, shape: tuple[int, int] | None = None) -> bool:
    """True when decoded (and checked), False when refused with a one-line MienError."""
    try:
        arr = decode_image(data, mode, name="upload.bin")
    except MienError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        assert "upload.bin" in message  # names the file at fault
        return False
    _check_decoded(arr, mode, shape)
    return True


def upload_or_refuse(data: bytes) -> None:
    """The HTTP API's path for an upload: content checks, header pixel count, then decode."""
    try:
        check_upload(data, "application/octet-stream", "upload.bin", max_bytes=1 << 20)
        check_pixels(data, "upload.bin", max_pixels=4_000_000)
        arr = decode_image(data, "rgb", name="upload.bin", max_pixels=4_000_000)
    except (ApiError, MienError) as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return
    _check_decoded(arr, "rgb")


@st.composite
def pictures(draw) -> tuple[Image.Image, str]:
    """A small picture of an odd mode and size (1x1, 1xN and Nx1 included) and a format to save
    it in."""
    mode = draw(st.sampled_from(sorted(MODES)))
    w = draw(st.integers(1, 24))
    h = draw(st.sampled_from([1, w, draw(st.integers(1, 24))]))
    if mode == "1":
        nbytes = (w + 7) // 8 * h
    else:
        nbytes = w * h * MODES[mode]
    raw = draw(st.binary(min_size=nbytes, max_size=nbytes))
    img = Image.frombytes(mode, (w, h), raw)
    if mode == "P":
        img.putpalette(draw(st.binary(min_size=768, max_size=768)))
        if draw(st.booleans()):
            img.info["transparency"] = draw(st.integers(0, 255))
    return img, draw(st.sampled_from(FORMATS))


def encode(img: Image.Image, fmt: str) -> bytes | None:
    """The picture saved as `fmt`, or None when Pillow cannot write that mode in that format."""
    out = io.BytesIO()
    try:
        img.save(out, fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return out.getvalue()


@FUZZ
@given(st.binary(max_size=512), st.sampled_from(["rgb", "gray"]))
def test_random_bytes_decode_or_refuse(data, mode):
    decode_or_refuse(data, mode)


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=512), st.sampled_from(["rgb", "gray"]))
def test_random_bytes_behind_a_real_magic_number(magic, rest, mode):
    decode_or_refuse(magic + rest, mode)
    upload_or_refuse(magic + rest)


@FUZZ
@given(pictures(), st.sampled_from(["rgb", "gray"]))
def test_whole_encodings_of_odd_modes_decode_at_their_size(picture, mode):
    img, fmt = picture
    data = encode(img, fmt)
    if data is None:
        return
    w, h = img.size
    assert decode_or_refuse(data, mode, (h, w)), f"{img.mode} {w}x{h} {fmt} was refused"


@FUZZ
@given(pictures(), st.floats(0.0, 1.0, exclude_max=True), st.sampled_from(["rgb", "gray"]))
def test_truncated_encodings_decode_or_refuse(picture, keep, mode):
    img, fmt = picture
    data = encode(img, fmt)
    if data is None:
        return
    cut = data[: int(len(data) * keep)]
    decode_or_refuse(cut, mode)
    upload_or_refuse(cut)


@FUZZ
@given(pictures(), st.data())
def test_encodings_with_flipped_bytes_decode_or_refuse(picture, data):
    img, fmt = picture
    encoded = encode(img, fmt)
    if encoded is None:
        return
    buf = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    decode_or_refuse(bytes(buf), "rgb")
    upload_or_refuse(bytes(buf))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_written_for_some_mode(fmt):
    """The properties above skip pairs Pillow cannot write; each format must still be tested."""
    img = Image.frombytes("RGB", (3, 1), bytes(range(9)))
    assert encode(img, fmt) is not None
