import numpy as np
import pytest

from mien.data.datasets import open_dataset
from mien.errors import ModelFileError
from mien.heads.embeddings import CnnEmbedder, embed_dataset, resolve_cnn


@pytest.fixture(scope="module")
def embedder(cnn_run):
    return CnnEmbedder(resolve_cnn(cnn_run), "pre_logits")


def _dataset(stripes):
    return open_dataset(stripes)["all"]


def test_embeddings_are_the_layer_activations(cnn_run, stripes, embedder):
    import torch

    ds = _dataset(stripes)
    images = [ds.load(i, "gray") for i in range(4)]
    e = embedder.embed(images)
    assert e.shape == (4, 64) and e.dtype == np.float32
    assert np.all(e >= 0)  # after the ReLU of dense2
    with torch.no_grad():
        x = torch.from_numpy(embedder.preprocess(images))
        manual = embedder.model.pre_logits(embedder.model.features(x)).numpy()
    np.testing.assert_allclose(e, manual, rtol=1e-5, atol=1e-6)
    dense1 = CnnEmbedder(resolve_cnn(cnn_run), "dense1").embed(images)
    assert dense1.shape == (4, 64) and not np.allclose(dense1, e)


def test_unknown_layer_and_checksum_mismatch_are_model_file_errors(cnn_run):
    with pytest.raises(ModelFileError, match="no embedding layer 'conv9'.*dense1, dense2"):
        CnnEmbedder(resolve_cnn(cnn_run), "conv9")
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        CnnEmbedder(resolve_cnn(cnn_run), sha256="0" * 64)


def test_second_call_reads_the_cache_without_embedding(stripes, embedder, cache, monkeypatch):
    ds = _dataset(stripes)
    calls = []
    real = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda images: calls.append(len(images)) or real(images))
    first = embed_dataset(embedder, ds, echo=lambda _: None)
    assert calls == [len(ds)] and not first.cached
    files = sorted(cache.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith(embedder.key)
    mtime = files[0].stat().st_mtime_ns

    second = embed_dataset(embedder, ds, echo=lambda _: None)
    assert calls == [len(ds)] and second.cached and second.seconds == 0.0
    assert files[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(second.x, first.x)
    np.testing.assert_array_equal(second.y, ds.labels)

    # another file list is another entry
    embed_dataset(embedder, ds.subset(range(10)), echo=lambda _: None)
    assert calls == [len(ds), 10] and len(list(cache.glob("*.npz"))) == 2


def test_mirror_appends_the_embeddings_of_flipped_images(stripes, embedder, cache):
    ds = _dataset(stripes).subset(range(6))
    both = embed_dataset(embedder, ds, mirror=True, echo=lambda _: None)
    assert both.x.shape == (12, 64)
    np.testing.assert_array_equal(both.y, np.concatenate([ds.labels, ds.labels]))
    flipped = [ds.load(i, "gray")[:, ::-1] for i in range(6)]
    np.testing.assert_allclose(both.x[6:], embedder.embed(flipped), rtol=1e-5, atol=1e-6)
    assert not np.allclose(both.x[6:], both.x[:6])
    # the plain half came from the same cache entry a plain call uses
    assert embed_dataset(embedder, ds, echo=lambda _: None).cached
