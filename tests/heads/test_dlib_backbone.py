import sys

import numpy as np
import pytest

from mien.errors import MissingDependencyError


def test_missing_dlib_names_the_install_command(monkeypatch):
    from mien.heads.dlib_backbone import DlibEmbedder

    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'mien\[dlib\]'"):
        DlibEmbedder()


def test_dlib_embeds_any_face_crop_as_128_numbers():
    pytest.importorskip("dlib")
    from mien.heads.dlib_backbone import DlibEmbedder

    e = DlibEmbedder()
    yy, xx = np.mgrid[0:48, 0:48]
    face = ((np.hypot(yy - 24, xx - 24) < 18) * 180 + 40).astype(np.uint8)
    out = e.embed([face, np.stack([face] * 3, axis=-1), face[:, ::-1].copy(), 255 - face])
    assert out.shape == (4, 128) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.all(np.linalg.norm(out, axis=1) > 0.1)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # gray and RGB of the same picture
    assert np.linalg.norm(out[0] - out[3]) > 1e-3
    assert e.reference()["kind"] == "dlib-resnet" and len(e.sha256) == 64
