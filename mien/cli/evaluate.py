"""`mien evaluate MODEL DATA`: score a classifier on a labelled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def evaluate_command(
    model: Annotated[str, typer.Argument(
        help="Bundled model name, run folder, .safetensors or .onnx file.")],
    data: Annotated[Path, typer.Argument(
        help="Class folders, a train/val/test tree or a FER2013 CSV.")],
    split: Annotated[str | None, typer.Option(
        help="Split to score [default: test, else val, else all; for a run folder trained "
             "on DATA, test, else the run's own val].")] = None,
    attribute: Annotated[str | None, typer.Option(
        help="CelebA folder: the attribute to score, e.g. Eyeglasses.")] = None,
    label_map: Annotated[str | None, typer.Option(
        help="Rename dataset classes to model labels: a=b,...")] = None,
    ignore: Annotated[str | None, typer.Option(help="Dataset classes to leave out: c,...")] = None,
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none or flip.")] = "none",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per model call.")] = 64,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write the metrics as JSON to this file.")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Write an HTML report and its PNGs to this folder.")] = None,
    detect: Annotated[bool, typer.Option(
        "--detect", help="DATA holds whole photos: score the largest face found, cut with the "
        "model's framing as `mien analyze` cuts it; a photo without a face counts as wrong.")
    ] = False,
    detector: Annotated[str | None, typer.Option(
        help="With --detect: haar | yunet | mtcnn [default: yunet, bundled]; the JSON names "
             "the detector that ran.")
    ] = None,
) -> None:
    """Accuracy, balanced accuracy, macro-F1 and per-class scores of MODEL on DATA."""
    import dataclasses
    import json

    from rich.console import Console
    from rich.progress import Progress

    from mien.data.datasets import LabelSpec
    from mien.detection import default_detector_name
    from mien.errors import MienError
    from mien.evaluation.compare import model_facts
    from mien.evaluation.evaluate import evaluate
    from mien.evaluation.tables import metrics_table, summary_line
    from mien.models.loading import load_classifier
    from mien.training.data import split_to_score

    if detector is not None and not detect:
        raise MienError(f"--detector {detector}: add --detect (it picks the detector that finds "
                        "faces in whole photos)")
    spec = LabelSpec.parse(label_map=label_map, ignore=ignore)
    classifier = load_classifier(model)
    scored = split_to_score(model, data, split, attribute)

    facts = model_facts(model)
    err = Console(stderr=True)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"evaluating {scored.name}", total=len(scored.dataset))
        result = evaluate(
            classifier, scored.dataset, spec, tta=tta, batch_size=batch_size, model_name=model,
            data_name=scored.data, split=scored.name,
            progress=lambda done: bar.update(task, completed=done),
            detector=(detector or default_detector_name()) if detect else None,
            check_framing=not detect,
        )
    result = dataclasses.replace(result, model_facts=facts,
                                 warnings=scored.warnings + result.warnings)

    # markup off: paths and labels may hold [brackets]; piped output is not squeezed to 80 columns
    out = Console(markup=False, width=None if Console().is_terminal else 200)
    out.print(summary_line(result))
    out.print(metrics_table(result.metrics))
    if result.unreadable:
        err.print(f"{len(result.unreadable)} unreadable image(s) skipped, e.g. "
                  f"{result.unreadable[0].error}", style="yellow", markup=False)
    for warning in result.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False, soft_wrap=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_json(), indent=1))
        out.print(f"metrics written to {json_path}")
    if report is not None:
        from mien.evaluation.report import write_report

        run_dir = Path(model) if Path(model).is_dir() else None
        html = write_report(result, report, run_dir=run_dir, classifier=classifier)
        out.print(f"report written to {html}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
