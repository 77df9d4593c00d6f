import numpy as np

from mien.data import transforms as T
from mien.training.augment import augment_batch, build_augmentation
from mien.training.config import TrainConfig


def _batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 24, 24), dtype=np.uint8)


def test_pipeline_follows_the_toggles():
    assert build_augmentation(TrainConfig(augment=False), (24, 24)) is None
    none = TrainConfig(flip=False, rotate=0, crop=0, brightness=0, contrast=0)
    assert build_augmentation(none, (24, 24)) is None
    pipe = build_augmentation(TrainConfig(crop=0.25, rotate=0, brightness=0, contrast=0), (24, 24))
    kinds = [type(t) for t in pipe.transforms]
    assert kinds == [T.HorizontalFlip, T.RandomCrop, T.Resize]
    assert pipe.transforms[1].size == (18, 18)  # a quarter of each side cropped away
    pipe = build_augmentation(none.replace(gamma=1.0, grayscale=0.2), (24, 24))
    assert [type(t) for t in pipe.transforms] == [T.RandomGamma, T.RandomGrayscale]
    assert np.isclose(np.exp(pipe.transforms[0].max_log), 2.0)  # gamma in [1/2, 2]
    assert pipe.transforms[1].p == 0.2
    pipe = build_augmentation(none.replace(erase=0.4), (24, 24))
    assert [type(t) for t in pipe.transforms] == [T.RandomErasing]
    assert pipe.transforms[0].p == 0.4


def test_augmentation_is_seeded_and_keeps_shape():
    images = _batch()
    pipe = build_augmentation(TrainConfig(), (24, 24))
    a = augment_batch(images, pipe, np.random.default_rng(5))
    b = augment_batch(images, pipe, np.random.default_rng(5))
    c = augment_batch(images, pipe, np.random.default_rng(6))
    assert a.shape == images.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, images)
    assert np.array_equal(augment_batch(images, None, np.random.default_rng(0)), images)


def test_flip_only_mirrors_about_half_the_batch():
    images = _batch()
    cfg = TrainConfig(rotate=0, crop=0, brightness=0, contrast=0)
    out = augment_batch(images, build_augmentation(cfg, (24, 24)), np.random.default_rng(1))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)
