"""Decode any image Pillow reads (PNG with alpha, 16-bit, CMYK JPEG, EXIF-rotated) to uint8."""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from mien.errors import ImageReadError

ColorMode = Literal["rgb", "gray"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
# Decompression-bomb guard: a 48x48 face dataset never needs more; a 100 MP photo is still fine.
MAX_PIXELS = 120_000_000
# Files up to this size are read in one go and decoded from memory; larger ones are streamed.
READ_AT_ONCE = 64 << 20


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _to_uint8(img) -> np.ndarray:
    """Convert a PIL image of any mode to a uint8 array, gray (H, W) or RGB (H, W, 3)."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        hi = 1.0 if arr.max() <= 1.0 else 255.0
        return np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # No convert() where the mode is already right: it would copy the whole picture (a
    # 7000x7000 RGB PNG holds 196 MB in Pillow).
    if mode in ("L", "1"):
        return _array(img if mode == "L" else img.convert("L"))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite on white: transparent background must not read as black.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    return _array(img if mode == "RGB" else img.convert("RGB"))


STRIP_PIXELS = 1 << 18  # a strip costs twice its bytes for a moment (see _array)


def _array(img) -> np.ndarray:
    """`np.asarray(img)` of an 8-bit L or RGB image, in strips of rows: numpy gets the pixels
    from Pillow as one bytes object joined from chunks, twice the picture for a moment."""
    w, h = img.size
    rows = max(1, STRIP_PIXELS // max(w, 1))
    if h <= rows:
        return np.asarray(img, dtype=np.uint8)
    out = np.empty((h, w, 3) if img.mode == "RGB" else (h, w), np.uint8)
    for top in range(0, h, rows):
        out[top:top + rows] = np.asarray(img.crop((0, top, w, min(top + rows, h))))
    return out


# Warning filters are process-wide and `warnings.catch_warnings` is not thread-safe (threads that
# overlap restore each other's filters): Pillow's header is read under this lock.
_OPEN_LOCK = threading.Lock()


def open_image(source):
    """Pillow's `Image.open` (reads the header; pixels are decoded on use) without Pillow's
    decompression-bomb warning: the caller checks the size against its own limit. Pillow's
    own hard cap (twice its warning size) still raises DecompressionBombError."""
    from PIL import Image

    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def decode_image(
    data: bytes | str | os.PathLike,
    mode: ColorMode | None = "rgb",
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode a file path or encoded bytes to uint8: (H, W, 3) for "rgb", (H, W) for "gray",
    and the file's own layout for None. EXIF orientation is applied."""
    from PIL import Image, UnidentifiedImageError

    label = name or (str(data) if not isinstance(data, bytes) else "<bytes>")
    try:
        if not isinstance(data, bytes):
            info = os.stat(data)
            if stat.S_ISREG(info.st_mode) and info.st_size <= READ_AT_ONCE:
                # One read instead of Pillow's many small ones: each gives up the GIL and
                # waits to get it back while analyze's other stages run. (Only regular
                # files: /dev/zero or a pipe would never end.)
                with open(data, "rb") as fh:
                    data = fh.read()
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with open_image(source) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageReadError(
                    f"{label}: {w}x{h} pixels exceeds the limit of {max_pixels:,}; "
                    "downscale the image first"
                )
            arr = _opencv_jpeg(img, data)
            if arr is None:
                img.load()
                arr = from_pil(img, None)
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{label}: file not found; check the path") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(f"{label}: is a folder, not an image file; give a file") from exc
    except PermissionError as exc:
        raise ImageReadError(f"{label}: permission denied; make the file readable") from exc
    except UnidentifiedImageError as exc:  # its message holds the repr of the file object
        raise ImageReadError(
            f"{label}: not an image format Pillow reads; remove or replace it"
        ) from exc
    except Image.DecompressionBombError as exc:  # Pillow's cap, where ours is set above it
        raise ImageReadError(f"{label}: too many pixels ({exc}); downscale the image first"
                             ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(
            f"{label}: corrupt or truncated image ({exc}); remove or replace it"
        ) from exc
    if arr.size == 0:
        raise ImageReadError(f"{label}: image has no pixels; remove it")
    return convert_color(arr, mode)


def _opencv_jpeg(img, data: bytes | str | os.PathLike) -> np.ndarray | None:
    """The pixels of an opened, not yet loaded Pillow JPEG (8-bit RGB or gray, no EXIF turn)
    decoded by OpenCV: the same libjpeg-turbo pixels (all 3,500 GENKI-SZSL photos equal; a test
    checks), but the decoding runs without the GIL and skips Pillow's copy through a bytes
    object, which kept the other stages waiting when analyze overlaps them. None where Pillow
    must do it: other formats and modes, an EXIF turn, a file whose last scan has no end
    marker (Pillow names a truncated file), a file too large to read at once or anything
    OpenCV cannot read."""
    if img.format != "JPEG" or img.mode not in ("RGB", "L") or upright(img) is not img:
        return None
    if not isinstance(data, bytes):  # a file over READ_AT_ONCE
        return None
    # The last scan (SOS, FFDA) must be closed by an end-of-image marker (FFD9), which cannot
    # occur inside scan data; bytes after it (GENKI's photos have 6) are ignored by both.
    if data.rfind(b"\xff\xd9") < max(0, data.rfind(b"\xff\xda")):
        return None
    import cv2

    gray = img.mode == "L"
    flags = (cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None
    if arr is None or arr.shape[:2] != img.size[::-1]:
        return None
    return arr if gray else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def from_pil(img, mode: ColorMode | None = "rgb") -> np.ndarray:
    """A PIL image of any mode as uint8, like `decode_image` gives a file (EXIF orientation
    applied)."""
    return convert_color(_to_uint8(upright(img)), mode)


def upright(img):
    """`img` turned as its EXIF orientation says; `img` itself, not a copy, when it needs
    no turn."""
    from PIL import ExifTags, ImageOps

    if img.getexif().get(ExifTags.Base.Orientation, 1) in (None, 1):
        return img
    return ImageOps.exif_transpose(img)


def read_image(path: str | os.PathLike, mode: ColorMode | None = "rgb") -> np.ndarray:
    return decode_image(path, mode, name=str(path))


def convert_color(arr: np.ndarray, mode: ColorMode | None) -> np.ndarray:
    """Gray <-> RGB for uint8 arrays; gray uses ITU-R 601 luma like OpenCV and Pillow."""
    if mode is None:
        return arr
    if mode == "gray":
        if arr.ndim == 2:
            return arr
        if arr.shape[2] == 1:
            return arr[:, :, 0]
        rgb = arr[:, :, :3].astype(np.float32)
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)
    if mode == "rgb":
        if arr.ndim == 2:
            return np.repeat(arr[:, :, None], 3, axis=2)
        if arr.shape[2] == 1:
            return np.repeat(arr, 3, axis=2)
        return np.ascontiguousarray(arr[:, :, :3])
    raise ValueError(f"color mode {mode!r}: use 'rgb', 'gray' or None")
