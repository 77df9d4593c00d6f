"""Train one model into a run folder: decode once, augment in numpy, preprocess with the same
`Preprocess` stored beside the weights, optimise with torch, keep the best epoch.

Run folder: config.yaml, split.json (when `data` was split), model.safetensors (best),
last.safetensors + last.state.safetensors (for --resume), model.onnx, metrics.json, curves.png,
confusion.png.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mien.data.preprocess import Preprocess
from mien.errors import MienError
from mien.training import checkpoint as ckpt
from mien.training.augment import add_mirrored, augment_batch, build_augmentation
from mien.training.config import ConfigError, TrainConfig, save_config
from mien.training.data import TrainData, prepare, read_split_record

log = logging.getLogger(__name__)
VAL_BATCH = 256


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: Path
    best_val_accuracy: float
    final_val_accuracy: float
    best_epoch: int
    epochs_run: int
    stopped: str  # completed | early_stopping | time_budget | interrupted
    train_seconds: float


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{Path(cfg.model or 'model').name}-{stamp}"


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA device is visible; use --device cpu")
    return name


def _transfer_source(spec: str) -> Path:
    """A run folder, a .safetensors file, or a shipped model's safetensors weights."""
    p = Path(spec)
    if p.is_dir():
        p = p / ckpt.MODEL_FILE
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise MienError(f"{p}: not found; --from takes a run folder or a .safetensors file")
        return p
    from importlib.resources import files

    shipped = files("mien.models") / "weights" / f"{spec}.safetensors"
    if shipped.is_file():
        return Path(str(shipped))
    raise MienError(f"--from {spec!r}: no run folder, .safetensors file or shipped model with "
                    "torch weights of that name")


def _setup_model(cfg: TrainConfig, classes: tuple[str, ...]):
    """The model, its preprocessing and loss kind; transferred weights when `--from` is set."""
    from mien.models import create_model, model_info

    if cfg.transfer_from:
        src = _transfer_source(cfg.transfer_from)
        state, record = ckpt.load_weights(src)
        if cfg.model and cfg.model != record["arch"]:
            raise ConfigError(f"--model {cfg.model!r} differs from {src}'s architecture "
                              f"{record['arch']!r}; leave --model out when using --from")
        model = ckpt.build_model(record, state, path=src)
        model.reset_head(len(classes))
        pre = Preprocess.from_dict(record["preprocess"])
        arch = record["arch"]
    else:
        arch = cfg.model
        pre = _preprocess_for(cfg)
        model = create_model(arch, len(classes), in_channels=pre.channels,
                             input_size=pre.input_size)
    info = model_info(arch)
    if info.task != "classify":
        raise ConfigError(f"--model {arch!r} is a {info.task}, not a classifier; `mien train` "
                          "trains classifiers")
    loss = cfg.loss or info.loss
    l2 = cfg.last_layer_l2 if cfg.last_layer_l2 is not None else info.last_layer_l2
    return model, pre, arch, loss, float(l2 or 0.0)


def _preprocess_for(cfg: TrainConfig) -> Preprocess:
    """The preprocessing a run will use, known before any image is decoded."""
    if cfg.transfer_from:
        record = ckpt.read_record(_transfer_source(cfg.transfer_from))
        return Preprocess.from_dict(record["preprocess"])
    from mien.models import model_info

    if not cfg.model:
        raise ConfigError("no model given: pass --model NAME (see `mien models`)")
    info = model_info(cfg.model)
    color = cfg.color or ("gray" if info.in_channels == 1 else "rgb")
    channels = 1 if color == "gray" else 3
    # Inputs scaled to [-1, 1]: the reports' networks train from scratch, so no dataset mean.
    return Preprocess(input_size=tuple(cfg.input_size or info.input_size), color=color,
                      equalize=cfg.equalize, blur_sigma=cfg.blur_sigma,
                      mean=(0.5,) * channels, std=(0.5,) * channels)


def _set_modes(model, frozen: bool) -> None:
    """Train mode, except a frozen backbone stays in eval so its BatchNorm statistics hold."""
    if not frozen:
        model.train()
        return
    model.eval()
    head = {id(p) for p in model.head_parameters()}
    for m in model.modules():
        params = list(m.parameters())
        if params and all(id(p) in head for p in params):
            m.train()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _hardware(device: str) -> dict:
    import torch

    hw = {"device": device, "cpu": _cpu_name(),
          "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
          "torch": torch.__version__, "python": platform.python_version()}
    if device.startswith("cuda"):
        hw["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return hw


def train(cfg: TrainConfig, *, resume: bool = False, data: TrainData | None = None,
          progress: bool = True, echo: Callable[[str], None] = print) -> RunResult:
    """Train `cfg` into its run folder (cfg.out); `resume` continues from last.safetensors."""
    import torch

    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if not resume and (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir}: already holds a run; pick another --out or --resume it")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = cfg.replace(out=str(run_dir))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)

    if data is None:
        pre = _preprocess_for(cfg)
        echo(f"decoding images for {cfg.model or cfg.transfer_from} at "
             f"{pre.input_size[0]}x{pre.input_size[1]} {pre.color} ...")
        t0 = time.perf_counter()
        data = prepare(cfg, pre, read_split_record(run_dir) if resume else None)
        echo(f"decoded {len(data.train_y)} training and {len(data.val_y)} validation images "
             f"in {time.perf_counter() - t0:.1f}s")
    for line in data.skipped[:5]:
        echo(f"skipped {line}")
    if len(data.skipped) > 5:
        echo(f"skipped {len(data.skipped) - 5} more unreadable images")
    if len(data.val_y) == 0:
        raise MienError(f"{cfg.data}: no validation images; give --val FOLDER or a fraction")
    torch.manual_seed(cfg.seed)
    model, pre, arch, loss_kind, head_l2 = _setup_model(cfg, data.classes)
    cfg = cfg.replace(model=arch)
    save_config(cfg, run_dir / "config.yaml")
    if data.split_record is not None:
        (run_dir / "split.json").write_text(json.dumps(data.split_record, indent=1))
    model.to(device)
    if device == "cpu":  # NHWC: ~2x faster depthwise/3x3 convolutions on CPU
        model.to(memory_format=torch.channels_last)
    if cfg.freeze:
        for p in model.backbone_parameters():
            p.requires_grad_(False)

    from mien.training.optim import (
        activation_for,
        class_weights,
        lr_factor,
        make_loss,
        make_optimizer,
        predict,
    )

    num_classes = len(data.classes)
    train_x, train_y = data.train_x, data.train_y
    if cfg.mirror_double:
        train_x, train_y = add_mirrored(train_x, train_y)
    pipeline = build_augmentation(cfg, pre.input_size)
    loss_fn = make_loss(loss_kind, label_smoothing=cfg.label_smoothing,
                        weights=class_weights(train_y, num_classes, cfg.class_weights))
    optimizer = make_optimizer(cfg, model, transfer=bool(cfg.transfer_from))
    steps_per_epoch = max(1, -(-len(train_y) // cfg.batch_size))
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    # Keras-style kernel_regularizer: L2 on the output layer's weights only (model_info's note).
    head_weights = [model.classifier.weight]

    record = ckpt.model_record(
        arch=arch, labels=data.classes, preprocess=pre, in_channels=pre.channels,
        model_kwargs=getattr(model, "model_kwargs", {}),
        activation=activation_for(loss_kind), loss=loss_kind,
        trained_on=str(cfg.data), run=run_dir.name)

    loop = {"epoch": 0, "history": [], "best_acc": -1.0, "best_epoch": 0, "train_seconds": 0.0,
            "images_seen": 0}
    best_state = None
    if resume:
        state, _ = ckpt.load_weights(run_dir / ckpt.LAST_FILE)
        model.load_state_dict(state)
        loop = ckpt.load_train_state(run_dir / ckpt.STATE_FILE, optimizer)
        if (run_dir / ckpt.MODEL_FILE).is_file():
            best_state = ckpt.load_weights(run_dir / ckpt.MODEL_FILE)[0]
        echo(f"resuming {run_dir} after epoch {loop['epoch']}")

    use_amp = cfg.amp and device.startswith("cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    def to_input(batch: np.ndarray) -> torch.Tensor:
        x = pre.normalize(batch) if pre.is_resize_only else pre(batch)
        return torch.from_numpy(x)

    prep_threads = cfg.num_workers or min(4, os.cpu_count() or 1)

    def batches(epoch: int):
        """(x, y) training batches, augmented on threads a few batches ahead of the model."""
        # One generator per epoch and per batch: the same batches whatever the thread timing,
        # and a resumed run replays the epochs it has not seen yet exactly.
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_y))

        def make(i: int):
            idx = np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size])
            rng = np.random.default_rng([cfg.seed, epoch, i])
            x = to_input(augment_batch(train_x[idx], pipeline, rng))
            return x, torch.from_numpy(train_y[idx])

        with ThreadPoolExecutor(max_workers=prep_threads) as pool:
            ahead = [pool.submit(make, i) for i in range(min(prep_threads + 1, steps_per_epoch))]
            for i in range(steps_per_epoch):
                cur = ahead.pop(0).result()
                if i + len(ahead) + 1 < steps_per_epoch:
                    ahead.append(pool.submit(make, i + len(ahead) + 1))
                yield cur

    def evaluate() -> tuple[float, float, np.ndarray]:
        model.eval()
        losses, preds = [], []
        with torch.no_grad(), torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
            for s in range(0, len(data.val_y), VAL_BATCH):
                x = to_input(data.val_x[s:s + VAL_BATCH]).to(device)
                y = torch.from_numpy(data.val_y[s:s + VAL_BATCH]).to(device)
                logits = model(x)
                losses.append(float(loss_fn(logits, y)) * len(y))
                preds.append(predict(logits).cpu().numpy())
        pred = np.concatenate(preds)
        return sum(losses) / len(data.val_y), float((pred == data.val_y).mean()), pred

    def save_last() -> None:
        ckpt.save_weights(run_dir / ckpt.LAST_FILE, model.state_dict(),
                          {**record, "epoch": loop["epoch"]})
        ckpt.save_train_state(run_dir / ckpt.STATE_FILE, optimizer, loop)

    budget = cfg.max_minutes * 60.0 if cfg.max_minutes else None
    stopped, best_pred = "completed", None
    t_start = time.perf_counter() - loop["train_seconds"]
    try:
        while loop["epoch"] < cfg.epochs:
            epoch = loop["epoch"] + 1
            torch.manual_seed(cfg.seed * 100_003 + epoch)
            _set_modes(model, cfg.freeze)
            # Sums stay on the device and are read every few steps: reading them each step
            # would stall a GPU on every batch.
            sum_loss = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            t_epoch = time.perf_counter()
            bar = _progress(steps_per_epoch, f"epoch {epoch}/{cfg.epochs}", progress)
            try:
                for step, (x, y) in enumerate(batches(epoch)):
                    global_step = (epoch - 1) * steps_per_epoch + step
                    spent = (time.perf_counter() - t_start) / budget if budget else None
                    for g, base in zip(optimizer.param_groups, base_lrs, strict=True):
                        g["lr"] = base * lr_factor(global_step, steps_per_epoch, cfg, spent)
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
                        logits = model(x)
                        loss = loss_fn(logits, y)
                        if head_l2:
                            loss = loss + head_l2 * sum((w.float() ** 2).sum()
                                                        for w in head_weights)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    sum_loss += loss.detach().float() * len(y)
                    correct += (predict(logits) == y).sum()
                    seen += len(y)
                    bar.update(1)
                    if step % 10 == 0 or step + 1 == steps_per_epoch:
                        mean_loss = float(sum_loss) / seen
                        if not np.isfinite(mean_loss):
                            raise MienError(f"loss became {mean_loss} in epoch {epoch}; lower "
                                            "--lr or add --warmup-epochs")
                        bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{float(correct) / seen:.3f}")
                    if budget and time.perf_counter() - t_start > budget:
                        stopped = "time_budget"
                        break
            finally:
                bar.close()
            epoch_seconds = time.perf_counter() - t_epoch
            train_loss, train_acc = float(sum_loss) / seen, float(correct) / seen
            val_loss, val_acc, pred = evaluate()
            loop["epoch"] = epoch
            loop["train_seconds"] = time.perf_counter() - t_start
            loop["images_seen"] += seen
            loop["history"].append({
                "epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                "val_loss": val_loss, "val_accuracy": val_acc,
                "lr": optimizer.param_groups[0]["lr"], "seconds": epoch_seconds,
                "images": seen})
            improved = val_acc > loop["best_acc"]
            if improved:
                loop["best_acc"], loop["best_epoch"], best_pred = val_acc, epoch, pred
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                ckpt.save_weights(run_dir / ckpt.MODEL_FILE, best_state,
                                  {**record, "epoch": epoch, "val_accuracy": val_acc})
            save_last()
            echo(f"epoch {epoch}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                 f"val loss {val_loss:.4f} acc {val_acc:.4f}{' *' if improved else ''} "
                 f"({epoch_seconds:.1f}s)")
            if stopped == "time_budget":
                break
            if cfg.patience and epoch - loop["best_epoch"] >= cfg.patience:
                stopped = "early_stopping"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
        save_last()  # weights as they are now; --resume continues after the last finished epoch
        echo(f"interrupted: saved {run_dir / ckpt.LAST_FILE}; continue with "
             f"`mien train --resume {run_dir}`")

    final_acc = loop["history"][-1]["val_accuracy"] if loop["history"] else float("nan")
    if best_state is not None:
        model.load_state_dict(best_state)  # the run's model is its best epoch
    if stopped != "interrupted" and best_state is not None:
        if best_pred is None:
            _, _, best_pred = evaluate()
        ckpt.export_onnx(model.cpu(), {**record, "epoch": loop["best_epoch"],
                                       "val_accuracy": loop["best_acc"]}, run_dir / ckpt.ONNX_FILE)
    result = RunResult(run_dir, loop["best_acc"], final_acc, loop["best_epoch"], loop["epoch"],
                       stopped, loop["train_seconds"])
    _write_metrics(run_dir, cfg, data, loop, result, best_pred, device)
    return result


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _write_metrics(run_dir: Path, cfg: TrainConfig, data: TrainData, loop: dict,
                   result: RunResult, best_pred: np.ndarray | None, device: str) -> None:
    from mien.training.plots import plot_confusion, plot_curves

    k = len(data.classes)
    metrics = {
        "model": cfg.model, "classes": list(data.classes),
        "best_val_accuracy": result.best_val_accuracy,
        "final_val_accuracy": result.final_val_accuracy,
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped": result.stopped,
        "train_seconds": round(result.train_seconds, 3),
        # Training steps only (validation excluded), so it compares across validation sizes.
        "images_per_second": round(
            loop["images_seen"] / max(sum(h["seconds"] for h in loop["history"]), 1e-9), 1),
        "num_train": int(len(data.train_y)), "num_val": int(len(data.val_y)),
        "skipped": list(data.skipped), "hardware": _hardware(device), "history": loop["history"],
    }
    if best_pred is not None:
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (data.val_y, best_pred), 1)
        metrics["confusion"] = cm.tolist()
        plot_confusion(cm, data.classes, run_dir / "confusion.png",
                       title=f"validation, epoch {result.best_epoch}")
    if loop["history"]:
        plot_curves(loop["history"], run_dir / "curves.png")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
