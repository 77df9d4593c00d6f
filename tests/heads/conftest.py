from pathlib import Path

import numpy as np
import pytest
from synthetic import make_stripes
from typer.testing import CliRunner

from mien.cli.main import app


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
    return make_stripes(tmp_path_factory.mktemp("heads-data") / "stripes", per_class=16)


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
