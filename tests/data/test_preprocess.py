import numpy as np

from mien.data.preprocess import Preprocess


def test_blur_sigma_smooths_every_input_and_roundtrips():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    sharp = Preprocess(input_size=(48, 48), color="gray")
    soft = Preprocess(input_size=(48, 48), color="gray", blur_sigma=3.0)
    assert sharp.is_resize_only and not soft.is_resize_only
    a, b = sharp.image(img), soft.image(img)
    assert np.array_equal(a, img)
    # Blur removes high frequencies: neighbour differences shrink a lot, the mean stays.
    def roughness(x):
        return np.abs(np.diff(x.astype(int), axis=1)).mean()

    assert roughness(b) < 0.2 * roughness(a)
    assert abs(float(b.mean()) - float(a.mean())) < 3
    assert Preprocess.from_dict(soft.to_dict()) == soft


def test_call_gives_normalised_nchw():
    img = np.full((10, 20, 3), 255, np.uint8)
    x = Preprocess(input_size=(8, 8), color="gray")([img, img])
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32
    assert np.allclose(x, 1.0)  # (1 - 0.5) / 0.5
