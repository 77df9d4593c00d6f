import io

import numpy as np
import pytest
from PIL import Image

from mien.data.io import convert_color, decode_image, is_image_path, read_image
from mien.errors import ImageReadError, MienError


def test_png_with_alpha_composited_on_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent on the left half
    rgba[:, 3:, 3] = 255
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    assert np.all(out[:, :3] == 255)  # transparent -> white, not black
    assert np.all(out[:, 3:] == [200, 0, 0])


def test_16bit_png_scaled_to_8bit(tmp_path):
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    gray = read_image(path, "gray")
    assert gray.dtype == np.uint8 and gray.tolist() == [[0, 128, 255]]
    assert read_image(path).shape == (1, 3, 3)


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (220, 30, 30)
    rgb[:, 8:] = (30, 30, 220)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    out = read_image(path)
    assert out.shape == (16, 16, 3)
    left, right = out[:, :6].reshape(-1, 3).mean(0), out[:, 10:].reshape(-1, 3).mean(0)
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]


def test_exif_rotation_applied(tmp_path):
    # Stored 8 wide x 4 tall with a bright left column; orientation 6 = display rotated 90 CW.
    arr = np.zeros((4, 8), np.uint8)
    arr[:, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=100)
    out = read_image(path, "gray")
    assert out.shape == (8, 4)
    assert out[0].mean() > 200 and out[-1].mean() < 50  # left column became the top row
    assert read_image(path, None).shape == (8, 4)


def test_truncated_file_names_the_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg.*truncated"):
        read_image(path)


def test_non_image_and_missing_files(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.jpg") as info:
        read_image(path)
    assert isinstance(info.value, MienError) and "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="upload.bin") as info:
        decode_image(b"garbage", name="upload.bin")
    assert " object at 0x" not in str(info.value)  # no repr of the BytesIO it was read from


def test_decode_bytes_and_pixel_limit():
    buf = io.BytesIO()
    Image.fromarray(np.full((10, 20), 9, np.uint8)).save(buf, "PNG")
    out = decode_image(buf.getvalue(), "gray")
    assert out.shape == (10, 20) and np.all(out == 9)
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        decode_image(buf.getvalue(), max_pixels=100)


def test_convert_color_and_suffixes():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 1] = 255
    assert convert_color(rgb, "gray").tolist() == [[150, 150], [150, 150]]
    assert convert_color(rgb[..., :1], "rgb").shape == (2, 2, 3)
    with pytest.raises(ValueError):
        convert_color(rgb, "bgr")
    assert is_image_path("A.JPG") and not is_image_path("labels.csv")


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "1"])
def test_pictures_taller_than_a_strip_decode_whole(monkeypatch, mode):
    import mien.data.io as mio

    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (37, 23, 3), np.uint8)).convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    whole = decode_image(buffer.getvalue(), None)
    monkeypatch.setattr(mio, "STRIP_PIXELS", 50)  # two rows of 23 a strip, the last one short
    assert np.array_equal(decode_image(buffer.getvalue(), None), whole)
    rgb = picture.convert("RGB") if mode != "RGBA" else None
    if rgb is not None:
        assert np.array_equal(decode_image(buffer.getvalue(), "rgb"), np.asarray(rgb))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_decoding_holds_no_copy_of_the_picture_beside_the_array(mode):
    """Python-side allocations while decoding stay near the array itself: Pillow's pixels
    (outside Python's allocator) plus one array. Before, the picture also existed as a joined
    bytes object and its chunks (3x the array)."""
    import tracemalloc

    side = 1500
    buffer = io.BytesIO()
    Image.new(mode, (side, side), 128).save(buffer, "PNG")
    data = buffer.getvalue()
    tracemalloc.start()
    try:
        array = decode_image(data, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert array.nbytes == side * side * (3 if mode == "RGB" else 1)
    assert peak < 1.5 * array.nbytes  # was 2.0


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpegs_decoded_by_opencv_give_pillows_pixels(tmp_path, mode):
    """The OpenCV path for plain JPEGs (decoding without the GIL) must be taken and return what
    Pillow itself decodes, from a path or bytes, also with bytes after the end marker."""
    import mien.data.io as mio

    rng = np.random.default_rng(5)
    picture = Image.fromarray(rng.integers(0, 256, (41, 67, 3), np.uint8)).convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue() + b"\x86\x92\x85\x95\x00\x86"  # trailing bytes, as GENKI's photos
    path = tmp_path / "plain.jpg"
    path.write_bytes(data)
    pillow = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    with Image.open(io.BytesIO(data)) as img:
        assert mio._opencv_jpeg(img, data) is not None
    assert np.array_equal(decode_image(data), pillow)
    assert np.array_equal(read_image(path), pillow)
    assert decode_image(data, None).ndim == (3 if mode == "RGB" else 2)


def test_jpeg_cut_just_before_its_end_marker_is_truncated():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32), np.uint8)).save(
        buffer, "JPEG")
    data = buffer.getvalue()
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(ImageReadError, match="cut.jpg.*truncated"):
        decode_image(data[:-2], name="cut.jpg")


def test_a_photo_over_pillows_warning_size_but_under_our_limit_decodes():
    """100 MP: over Pillow's decompression-bomb warning (89.5 MP), under MAX_PIXELS (120 MP)."""
    from mien.data.io import MAX_PIXELS

    side = 10_000
    assert Image.MAX_IMAGE_PIXELS < side * side < MAX_PIXELS
    buf = io.BytesIO()
    Image.new("L", (side, side), 7).save(buf, "PNG")
    out = decode_image(buf.getvalue(), None, name="big.png")
    assert out.shape == (side, side) and out[0, 0] == 7 and out[-1, -1] == 7


def test_announced_sizes_over_either_limit_are_refused_before_decoding():
    from synthetic import bomb_png

    with pytest.raises(ImageReadError, match=r"bomb.png: 12000x12000 pixels exceeds the limit"):
        decode_image(bomb_png(12_000, 12_000), name="bomb.png")  # 144 MP: ours
    with pytest.raises(ImageReadError, match=r"bomb.png: too many pixels .*downscale"):
        decode_image(bomb_png(60_000, 60_000), name="bomb.png", max_pixels=10**10)  # Pillow's


def test_decoding_in_threads_leaves_the_warning_filters_as_they_were():
    """catch_warnings saves and restores the process-wide filters; overlapping threads would
    restore each other's (mien.data.io.open_image reads headers one thread at a time)."""
    import threading
    import warnings

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 5, np.uint8)).save(buf, "PNG")
    data, before, errors = buf.getvalue(), list(warnings.filters), []

    def work():
        try:
            for _ in range(300):
                decode_image(data, "gray")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and warnings.filters == before
