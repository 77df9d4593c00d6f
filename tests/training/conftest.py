from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mien.cli.main import app

# Small and fast: fer-a is one of the smallest zoo classifiers at 48x48 gray.
FAST = ["--model", "fer-a", "--batch-size", "8", "--device", "cpu", "--quiet"]


def make_stripes(root: Path, per_class: int = 20, seed: int = 0) -> Path:
    """Two classes a CNN tells apart in an epoch or two: horizontal vs vertical stripes, noisy,
    random phase (left-right flips keep the class)."""
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


def run_cli(*args: str, ok: bool = True):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="session")
def stripes(tmp_path_factory) -> Path:
    return make_stripes(tmp_path_factory.mktemp("data") / "stripes")


@pytest.fixture(scope="session")
def base_run(stripes, tmp_path_factory) -> Path:
    """`mien train` for 2 epochs on 40 generated images; shared by the read-only tests."""
    out = tmp_path_factory.mktemp("runs") / "base"
    run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out)
    return out
