from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mien.cli.main import app


def make_stripes(root: Path, per_class: int = 16, seed: int = 0) -> Path:
    """Horizontal vs vertical noisy stripes, 48x48 gray: a CNN separates them in one epoch."""
    rng = np.random.default_rng(seed)
    for name in ("horizontal", "vertical"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            period = int(rng.integers(3, 7))
            stripes = ((np.arange(48) + rng.integers(0, 8)) // period % 2) * 150.0 + 50.0
            img = np.broadcast_to(stripes[:, None] if name == "horizontal" else stripes[None, :],
                                  (48, 48))
            img = np.clip(img + rng.normal(0, 20, (48, 48)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


def run_cli(*args, ok: bool = True):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def cli_error(*args) -> str:
    """The one-line message `mien` prints as `error: ...` for a command that must fail."""
    from mien.errors import MienError

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code != 0
    assert isinstance(result.exception, MienError), (result.output, result.exception)
    return str(result.exception)


@pytest.fixture(scope="session")
def stripes(tmp_path_factory) -> Path:
    return make_stripes(tmp_path_factory.mktemp("heads-data") / "stripes")


@pytest.fixture(scope="session")
def cnn_run(stripes, tmp_path_factory) -> Path:
    """A fer-a trained one epoch on the stripes: the network every head test embeds with."""
    out = tmp_path_factory.mktemp("heads-runs") / "cnn"
    run_cli("train", stripes, "--model", "fer-a", "--epochs", "1", "--batch-size", "8",
            "--device", "cpu", "--quiet", "--no-augment", "--out", out)
    return out


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    """A private embedding cache (never the user's ~/.cache)."""
    monkeypatch.setenv("MIEN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mien" / "embeddings"


def blobs(n_per_class: int = 30, dim: int = 8, k: int = 3, seed: int = 0):
    """Well separated Gaussian clusters: embeddings any head classifies nearly perfectly."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, dim))
    x = np.concatenate([c + rng.normal(0, 0.7, (n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(k), n_per_class)
    return x.astype(np.float32), y
