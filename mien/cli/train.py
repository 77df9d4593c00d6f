"""`mien train DATA --model NAME`: train a classifier into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option
HEADS = "Heads on embeddings and anomaly detection"
HEAD_OPTIONS = ("head", "layer", "head_params", "grid", "backbone", "max_train", "n_jobs",
                "cache_dir", "anomaly", "normal_class", "score", "quantile")


def train(
    data: Annotated[
        str | None, typer.Argument(help="Folder of class folders, train/val tree or FER2013 CSV.")
    ] = None,
    model: Annotated[
        str | None, Opt("--model", "-m", help="Architecture (list them: `mien models zoo`).")
    ] = None,
    val: Annotated[
        str | None, Opt(help="Validation folder, or a fraction of DATA such as 0.1.")
    ] = None,
    attribute: Annotated[
        str | None, Opt(help="CelebA folder: the attribute to classify, e.g. Eyeglasses.")
    ] = None,
    config: Annotated[
        Path | None, Opt("--config", "-c", help="YAML file of options; options given here win.")
    ] = None,
    out: Annotated[
        str | None, Opt("--out", "-o", help="Run folder (default runs/MODEL-TIME).")
    ] = None,
    epochs: Annotated[int | None, Opt(help="Epochs (default 30).")] = None,
    batch_size: Annotated[int | None, Opt(
        help="Images per step and process (default 64); N processes (--devices, torchrun) "
             "take N times it a step.")] = None,
    lr: Annotated[float | None, Opt(help="Learning rate (default 0.001).")] = None,
    optimizer: Annotated[str | None, Opt(help="adam | sgd")] = None,
    momentum: Annotated[float | None, Opt(help="SGD momentum (default 0.9).")] = None,
    weight_decay: Annotated[float | None, Opt(help="L2 on every weight (default 0).")] = None,
    schedule: Annotated[str | None, Opt(help="none | step | cosine | onecycle")] = None,
    step_epochs: Annotated[int | None, Opt(help="Schedule step: lr x0.1 every N epochs.")] = None,
    warmup_epochs: Annotated[float | None, Opt(help="Linear lr warm-up, in epochs.")] = None,
    patience: Annotated[
        int | None, Opt(help="Early stopping after N epochs without progress.")
    ] = None,
    loss: Annotated[str | None, Opt(help="cross_entropy | squared_hinge | bce")] = None,
    label_smoothing: Annotated[float | None, Opt(help="Cross-entropy label smoothing.")] = None,
    last_layer_l2: Annotated[float | None, Opt(
        help="c * sum(w^2) of the output layer added to the loss (default the model's).")] = None,
    class_weights: Annotated[str | None, Opt(help="none | balanced | sqrt")] = None,
    aux_attributes: Annotated[str | None, Opt(
        help="CelebA data: also learn these attributes (all | Male,Wearing_Hat,...).")] = None,
    aux_weight: Annotated[float | None, Opt(help="Weight of that auxiliary loss (0.5).")] = None,
    teacher: Annotated[str | None, Opt(
        help="Distil these trained models into this one: run folders, model files or bundled "
             "names, comma-separated (averaged).")] = None,
    distill_weight: Annotated[float | None, Opt(
        help="With --teacher: the teacher's share of the loss, 0-1 (default 0.5).")] = None,
    distill_temperature: Annotated[float | None, Opt(
        help="With --teacher: temperature softening both probabilities (default 2).")] = None,
    augment: Annotated[bool | None, Opt(
        "--augment/--no-augment", help="All augmentation on/off (default on).")] = None,
    flip: Annotated[bool | None, Opt("--flip/--no-flip", help="Random left-right flips.")] = None,
    rotate: Annotated[float | None, Opt(help="Max rotation, degrees (default 10).")] = None,
    crop: Annotated[float | None, Opt(help="Random crop losing this fraction (default 0.1).")
                    ] = None,
    brightness: Annotated[float | None, Opt(help="Max brightness shift, fraction of 255.")] = None,
    contrast: Annotated[float | None, Opt(help="Contrast factor in [1 - c, 1 + c].")] = None,
    blur: Annotated[float | None, Opt(help="Probability of a random Gaussian blur.")] = None,
    scale_shift: Annotated[float | None, Opt(help="Max zoom change and shift, fractions.")] = None,
    gamma: Annotated[float | None, Opt(help="Random gamma in [1/(1+g), 1+g] (skin, exposure).")
                     ] = None,
    grayscale: Annotated[float | None, Opt(help="Probability of a gray copy of an RGB image.")
                         ] = None,
    erase: Annotated[float | None, Opt(
        help="Probability of random erasing (a grey rectangle: occlusion).")] = None,
    mirror_double: Annotated[
        bool | None, Opt("--mirror-double/--no-mirror-double", "--mirror/--no-mirror",
                         help="Add the mirror of every training image (heads: its embedding).")
    ] = None,
    input_size: Annotated[str | None, Opt(help="HxW, e.g. 48x48.")] = None,
    color: Annotated[str | None, Opt(help="gray | rgb")] = None,
    equalize: Annotated[str | None, Opt(help="none | hist | clahe")] = None,
    blur_sigma: Annotated[float | None, Opt(
        help="Gaussian blur of every input, in pixels, at training and inference: for training "
             "images blurrier than the photos the model will read.")] = None,
    train_blur_sigma: Annotated[
        float | None, Opt(help="Blur of training batches (default --blur-sigma; 0 when the "
                               "training images are already blurred).")] = None,
    select: Annotated[str | None, Opt(help="accuracy | balanced_accuracy: the val score that "
                                           "picks the best epoch.")] = None,
    tta: Annotated[str | None, Opt(help="none | flip: test-time augmentation stored with the "
                                         "weights, done by every prediction.")] = None,
    framing_margin: Annotated[float | None, Opt(
        help="How analyze crops faces for this model: box side x (1 + margin) (default 0.2); "
             "recorded with the weights, match your training crops.")] = None,
    framing_align: Annotated[bool | None, Opt(
        "--framing-align/--no-framing-align",
        help="Level the eyes of analyze's crops for this model (default on).")] = None,
    classes: Annotated[str | None, Opt(help="Keep these classes: happy,sad.")] = None,
    merge: Annotated[str | None, Opt(help="Fold classes: disgust=angry.")] = None,
    seed: Annotated[int | None, Opt(help="Seed of weights, order and augmentation.")] = None,
    split_seed: Annotated[int | None, Opt(help="Seed of the train/val split of DATA.")] = None,
    repeats: Annotated[
        int | None, Opt(help="Train N seeds into RUN/seed-K and report mean/std.")
    ] = None,
    ensemble: Annotated[bool | None, Opt(
        "--ensemble/--no-ensemble", help="With --repeats: average the seeds into RUN/ensemble.")
    ] = None,
    ensemble_tta: Annotated[str | None, Opt(
        help="With --ensemble: none | flip, the ensemble's test-time augmentation (default: "
             "the members' --tta).")] = None,
    device: Annotated[str | None, Opt(help="auto | cpu | cuda")] = None,
    devices: Annotated[int | None, Opt(
        help="Data-parallel processes (torch DDP): N GPUs, or N CPU processes sharing the "
             "cores; --batch-size is per process, the effective batch N times it.")] = None,
    amp: Annotated[bool | None, Opt("--amp/--no-amp", help="Mixed precision on CUDA.")] = None,
    num_workers: Annotated[int | None, Opt(help="Threads decoding and augmenting (default auto).")
                           ] = None,
    threads: Annotated[int | None, Opt(help="Torch CPU threads (default torch's).")] = None,
    max_minutes: Annotated[float | None, Opt(help="Training-time budget in minutes.")] = None,
    transfer_from: Annotated[
        str | None, Opt("--from", help="Start from a run folder, checkpoint or shipped model.")
    ] = None,
    pretrained: Annotated[str | None, Opt(
        help="Start --model (resnet18/50, vgg11/19) from ImageNet weights: a torchvision or "
             "timm state dict, .pth or .safetensors.")] = None,
    freeze: Annotated[bool | None, Opt(
        "--freeze/--no-freeze", help="With --from or --pretrained: train only the head.")
    ] = None,
    backbone_lr_mult: Annotated[float | None, Opt(
        help="With --from or --pretrained, no --freeze: backbone lr = lr x this (default 0.1)."
    )] = None,
    strict: Annotated[
        bool | None, Opt("--strict/--no-strict", help="Stop at the first unreadable image.")
    ] = None,
    resume: Annotated[Path | None, Opt(help="Continue the run in this folder.")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bars.")] = False,
    head: Annotated[str | None, Opt(
        help="Fit a head on --from's embeddings: svm | forest | knn | logreg | bagged-svm.",
        rich_help_panel=HEADS)] = None,
    layer: Annotated[str | None, Opt(
        help="Embedding layer of --from (default pre_logits).", rich_help_panel=HEADS)] = None,
    head_params: Annotated[list[str] | None, Opt(
        "--param", help="Head parameter NAME=VALUE, repeatable: C=10, trees=300, k=9.",
        rich_help_panel=HEADS)] = None,
    grid: Annotated[bool | None, Opt(
        "--grid/--no-grid", help="Cross-validated grid search over the head's default grid "
        "(or grid: in --config).", rich_help_panel=HEADS)] = None,
    backbone: Annotated[str | None, Opt(
        help="cnn (the network of --from) | dlib-resnet (needs the dlib extra).",
        rich_help_panel=HEADS)] = None,
    max_train: Annotated[int | None, Opt(
        help="Fit the head on a stratified subset of this many training images.",
        rich_help_panel=HEADS)] = None,
    n_jobs: Annotated[int | None, Opt(
        help="Parallel jobs for grid search and parallel heads (-1: all cores).",
        rich_help_panel=HEADS)] = None,
    cache_dir: Annotated[str | None, Opt(
        help="Embedding cache folder (default $MIEN_CACHE or ~/.cache, then mien/embeddings).",
        rich_help_panel=HEADS)] = None,
    anomaly: Annotated[bool | None, Opt(
        "--anomaly", help="Train an autoencoder (--model smile-autoencoder) on one class as an "
        "anomaly detector.", rich_help_panel=HEADS)] = None,
    normal_class: Annotated[str | None, Opt(
        help="With --anomaly: the class it learns.", rich_help_panel=HEADS)] = None,
    score: Annotated[str | None, Opt(
        help="With --anomaly: mse | wasserstein.", rich_help_panel=HEADS)] = None,
    quantile: Annotated[float | None, Opt(
        help="With --anomaly: threshold at this quantile of training scores (default 0.9).",
        rich_help_panel=HEADS)] = None,
) -> None:
    """Train a classifier; the run folder gets weights, ONNX, metrics and plots.

    With --head, fit a scikit-learn head on a trained network's embeddings instead; with
    --anomaly, train an autoencoder anomaly detector. `mien evaluate` loads either run."""
    given = dict(locals())
    head_options = {k: v for k, v in given.items() if k in HEAD_OPTIONS}
    options = {k: v for k, v in given.items()
               if k not in ("config", "resume", "quiet", "devices", *HEAD_OPTIONS)}
    from mien.errors import MienError
    from mien.training.config import resolve_config

    heads = any(v is not None for v in head_options.values())
    if heads:
        from mien.training.distributed import refuse_under_torchrun

        if devices is not None:
            raise MienError("--devices trains networks; heads and --anomaly train in one "
                            "process: leave --devices out")
        refuse_under_torchrun("training a head or --anomaly")
    if heads or config is not None:
        from mien.heads.runs import train_from_options

        run_dir = train_from_options(config, options, head_options)
        if run_dir is not None:
            typer.echo(f"run folder: {run_dir}")
            return

    if resume is not None:
        if config is not None:
            raise MienError("--resume reads the run's own config.yaml; leave --config out")
        config = resume / "config.yaml"
        if not config.is_file():
            raise MienError(f"{resume}: no config.yaml: nothing to resume (the run stopped "
                            "before it began, or this is not a run folder); start it again "
                            "without --resume")
        options["out"] = str(resume)
    cfg = resolve_config(config, **options)
    if not cfg.data:
        raise MienError("no data: give DATA (a folder or FER2013 CSV) or data: in --config")

    if devices is not None:
        from mien.training.fit import train_processes

        _report(train_processes(cfg, devices, resume=resume is not None, progress=not quiet))
    elif cfg.repeats > 1:
        from mien.training.repeats import train_repeats

        run_dir, _ = train_repeats(cfg, resume=resume is not None, progress=not quiet)
        typer.echo(f"run folder: {run_dir}")
    else:
        from mien.training.fit import train as fit

        _report(fit(cfg, resume=resume is not None, progress=not quiet))


def _report(result) -> None:
    """The run's outcome, said once (by process 0 under torchrun)."""
    import os

    if os.environ.get("RANK", "0") != "0":
        return
    if result.epochs_run == 0:  # interrupted in epoch 1: no figures to give
        raise typer.Exit(130)
    typer.echo(f"best val accuracy {result.best_val_accuracy:.4f} (epoch {result.best_epoch}), "
               f"final {result.final_val_accuracy:.4f}, {result.epochs_run} epochs, "
               f"{result.train_seconds:.1f}s, stopped: {result.stopped}")
    typer.echo(f"run folder: {result.run_dir}")
    if result.stopped == "interrupted":
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command(name="train")(train)
