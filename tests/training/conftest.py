from pathlib import Path

import pytest
from synthetic import make_stripes  # noqa: F401  (re-exported for test modules)
from typer.testing import CliRunner

from mien.cli.main import app

# Small and fast: fer-a is one of the smallest zoo classifiers at 48x48 gray.
FAST = ["--model", "fer-a", "--batch-size", "8", "--device", "cpu", "--quiet"]


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
