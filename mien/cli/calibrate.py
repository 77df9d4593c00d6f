"""`mien calibrate MODEL [DATA] --out FILE`: fit a model's temperature on labelled images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def calibrate_command(
    model: Annotated[str, typer.Argument(
        help="Bundled model name, run folder, .safetensors or .onnx file.")],
    data: Annotated[Path | None, typer.Argument(
        help="Labelled images: class folders, a train/val/test tree or a FER2013 CSV "
             "[default: a run folder's validation split, a bundled model's card validation "
             "data].", show_default=False)] = None,
    out: Annotated[Path, typer.Option(
        help="The calibrated copy: a .onnx (bundled names, .onnx files) or .safetensors file.",
        show_default=False)] = ...,
    split: Annotated[str | None, typer.Option(
        help="Split of DATA to fit on [default: val, else all]; never the test split you "
             "report.")] = None,
    attribute: Annotated[str | None, typer.Option(
        help="CelebA folder: the attribute, e.g. Eyeglasses.")] = None,
    label_map: Annotated[str | None, typer.Option(
        help="Rename dataset classes to model labels: a=b,...")] = None,
    ignore: Annotated[str | None, typer.Option(help="Dataset classes to leave out: c,...")] = None,
) -> None:
    """Fit MODEL's temperature on DATA and write a copy of it that predicts with it; print the
    expected calibration error (ECE) before and after."""
    from mien.data.datasets import LabelSpec
    from mien.training.calibrate import calibrate_model, calibration_data

    dataset = data_name = None
    if data is not None:
        dataset, data_name = calibration_data(data, split, attribute)
    spec = LabelSpec.parse(label_map=label_map, ignore=ignore)
    result, path = calibrate_model(model, out, dataset, data_name=data_name, label_spec=spec)
    print(f"{model}: temperature {result.temperature:.4f} fitted on {result.n} images; "
          f"ECE {result.ece_before:.4f} -> {result.ece_after:.4f}; written {path}")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
