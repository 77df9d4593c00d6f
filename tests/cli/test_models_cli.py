"""`mien models list` and `mien models zoo` fit a 100-column terminal; the zoo lists every
registered architecture."""

from __future__ import annotations

from typer.testing import CliRunner

from mien.cli.main import app
from mien.errors import MienError

runner = CliRunner()


def test_models_list_fits_100_columns():
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 100
    for name in ("expression", "smile", "glasses"):
        assert any(line.startswith(f"│ {name} ") for line in lines), name


def test_models_zoo_lists_the_architectures_train_builds():
    from mien.models import list_models, model_info

    result = runner.invoke(app, ["models", "zoo"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 100
    names = [line.split("│")[1].strip() for line in lines if line.startswith("│ ")]
    assert [n for n in names if n] == list_models()
    info = model_info("mien-net-s")
    row = next(line for line in lines if line.startswith("│ mien-net-s "))
    assert f"{info.input_size[0]}x{info.input_size[1]} gray" in row and info.loss in row

    only = runner.invoke(app, ["models", "zoo", "mien-net-*"])
    assert only.exit_code == 0
    assert "mien-net-s" in only.output and "resnet18" not in only.output
    none = runner.invoke(app, ["models", "zoo", "nothing-*"])
    assert isinstance(none.exception, MienError)
    assert "no architecture matches 'nothing-*'" in str(none.exception)
