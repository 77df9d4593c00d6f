"""Train one model into a run folder: decode once, augment in numpy, preprocess with the same
`Preprocess` stored beside the weights, optimise with torch, keep the best epoch.

Run folder: config.yaml, split.json (when `data` was split), model.safetensors (best, with its
temperature fitted on validation), last.state.safetensors (for --resume) + last.safetensors,
model.onnx, metrics.json, curves.png, confusion.png.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mien.data.preprocess import Preprocess
from mien.errors import MienError, ModelFileError
from mien.evaluation.metrics import balanced_accuracy, confusion_matrix
from mien.runfiles import transfer_source
from mien.training import checkpoint as ckpt
from mien.training.augment import add_mirrored, augment_batch, build_augmentation
from mien.training.config import ConfigError, TrainConfig, save_config
from mien.training.data import TrainData, prepare, read_split_record

log = logging.getLogger(__name__)
VAL_BATCH = 256
# The multi-task head of runs saved before it moved into the state file (--resume reads it).
AUX_FILE = "aux_head.safetensors"
# What a run writes before its first epoch is saved: a run killed that early left only these.
FIRST_FILES = ("config.yaml", "split.json", ckpt.MODEL_FILE, ckpt.LAST_FILE, AUX_FILE)


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


def claim_run_dir(run_dir: Path, resume: bool, echo: Callable[[str], None]) -> None:
    """Make `run_dir` this run's. A new run never overwrites one that saved an epoch or
    finished, but takes over a folder whose run was killed before saving its first epoch:
    nothing there is worth keeping, and --resume of it would start from epoch 1 anyway."""
    if not resume and (run_dir / "config.yaml").exists():
        if any(run_dir.rglob(ckpt.STATE_FILE)) or any(run_dir.rglob("metrics.json")):
            raise ConfigError(f"{run_dir}: already holds a run; pick another --out or --resume it")
        echo(f"{run_dir}: its run stopped before saving an epoch; starting over")
        for name in FIRST_FILES:
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA device is visible; use --device cpu")
    return name


def _transfer_weights(spec: str, echo: Callable[[str], None] | None = None
                      ) -> tuple[Path, dict, dict]:
    """(file, state, record) of the network `--from` starts from: a run folder, a .safetensors
    file or a shipped model. An ensemble (the shipped `expression` is one) gives its member with
    the best validation accuracy: fine-tuning trains one network."""
    src = transfer_source(spec)
    state, record = ckpt.load_weights(src)
    if record.get("members"):
        n = len(record["members"])
        state, record, k = ckpt.best_member(state, record)
        if echo is not None:
            echo(f"--from {spec}: an ensemble of {n} networks; fine-tuning starts from member "
                 f"{k + 1} ({record['arch']}), its best on validation")
    return src, state, record


def _setup_model(cfg: TrainConfig, classes: tuple[str, ...],
                 echo: Callable[[str], None] | None = None):
    """The model, its preprocessing and loss kind; transferred weights when `--from` is set."""
    from mien.models import create_model, model_info

    if cfg.transfer_from:
        src, state, record = _transfer_weights(cfg.transfer_from, echo)
        if cfg.model and cfg.model != record["arch"]:
            raise ConfigError(f"--model {cfg.model!r} differs from {src}'s architecture "
                              f"{record['arch']!r}; leave --model out when using --from")
        model = ckpt.build_model(record, state, path=src)
        model.reset_head(len(classes))
        pre = Preprocess.from_dict(record["preprocess"])
        arch = record["arch"]
    elif cfg.pretrained:
        from mien.models.pretrained import create_pretrained

        arch, pre = cfg.model, preprocess_for(cfg)
        model, loaded = create_pretrained(arch, cfg.pretrained, len(classes), pre.channels,
                                          pre.input_size)
        for line in loaded.lines():
            (echo or log.info)(line)
    else:
        arch = cfg.model
        pre = preprocess_for(cfg)
        model = create_model(arch, len(classes), in_channels=pre.channels,
                             input_size=pre.input_size)
    info = model_info(arch)
    if info.task != "classify":
        raise ConfigError(f"--model {arch!r} is a {info.task}, not a classifier; `mien train` "
                          "trains classifiers")
    loss = cfg.loss or info.loss
    l2 = cfg.last_layer_l2 if cfg.last_layer_l2 is not None else info.last_layer_l2
    return model, pre, arch, loss, float(l2 or 0.0)


def preprocess_for(cfg: TrainConfig) -> Preprocess:
    """The preprocessing a run will use, known before any image is decoded."""
    if cfg.transfer_from:
        # an ensemble's members share their preprocessing, so its record's is theirs
        record = ckpt.read_record(transfer_source(cfg.transfer_from))
        return Preprocess.from_dict(record["preprocess"])
    from mien.models import model_info

    if not cfg.model:
        raise ConfigError("no model given: pass --model NAME (see `mien models`)")
    info = model_info(cfg.model)
    color = cfg.color or ("gray" if info.in_channels == 1 else "rgb")
    channels = 1 if color == "gray" else 3
    # Inputs scaled to [-1, 1]: the reports' networks train from scratch, so no dataset mean;
    # ImageNet weights expect the statistics they were trained with.
    mean, std = (0.5,) * channels, (0.5,) * channels
    if cfg.pretrained:
        from mien.models.pretrained import imagenet_normalization

        mean, std = imagenet_normalization(channels)
    return Preprocess(input_size=tuple(cfg.input_size or info.input_size), color=color,
                      equalize=cfg.equalize, blur_sigma=cfg.blur_sigma, mean=mean, std=std)


def _mean_probability(a, b, activation: str):
    """The mean probability of two views, as logits `predict` reads the same way: a single
    sigmoid column goes back through logit, several columns are argmaxed as they are."""
    import torch

    if activation != "sigmoid":
        return (torch.softmax(a.float(), 1) + torch.softmax(b.float(), 1)) / 2
    p = (torch.sigmoid(a.float()) + torch.sigmoid(b.float())) / 2
    return torch.logit(p, eps=1e-7) if p.shape[1] == 1 else p


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


def _count(params) -> int:
    return sum(p.numel() for p in params)


def cpu_name() -> str:
    """The CPU model, for the hardware line of run folders and benchmarks."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _hardware(device: str) -> dict:
    import torch

    hw = {"device": device, "cpu": cpu_name(),
          "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
          "torch": torch.__version__, "python": platform.python_version()}
    if device.startswith("cuda"):
        hw["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return hw


def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def train(cfg: TrainConfig, *, resume: bool = False, data: TrainData | None = None,
          progress: bool = True, echo: Callable[[str], None] = print,
          warn: Callable[[str], None] = warn_on_stderr) -> RunResult:
    """Train `cfg` into its run folder (cfg.out); `resume` continues from last.safetensors.
    `data` lets repeated runs share one decoded copy of the images. `warn` gets what makes the
    model suspect (metrics.json keeps it under `warnings`). Started by torchrun (or
    `train_processes`), each process trains its share of every batch (mien.training.distributed)
    and process 0 alone speaks and writes."""
    from mien.training.distributed import joined

    with joined(cfg.device) as group:
        if not group.main:
            echo = warn = _silent
            progress = False
        return _train(cfg, resume, data, progress, echo, warn, group)


def _silent(_: str) -> None:
    pass


def _train(cfg: TrainConfig, resume: bool, data: TrainData | None, progress: bool, echo,
           warn, group) -> RunResult:
    import torch

    def claim() -> Path:
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
        claim_run_dir(run_dir, resume, echo)
        return run_dir

    run_dir = group.on_main(claim)  # one folder, though the processes' clocks name it apart
    cfg = cfg.replace(out=str(run_dir))
    threads = cfg.threads or group.cpu_threads()
    if threads:
        torch.set_num_threads(threads)
    device = group.device or resolve_device(cfg.device)

    if data is None:
        data = _decode(cfg, read_split_record(run_dir) if resume else None, echo)
    for line in data.skipped[:5]:
        echo(f"skipped {line}")
    if len(data.skipped) > 5:
        echo(f"skipped {len(data.skipped) - 5} more unreadable images")
    if len(data.val_y) == 0:
        raise MienError(f"{cfg.data}: no validation images; give --val FOLDER or a fraction")

    torch.manual_seed(cfg.seed)
    model, pre, arch, loss_kind, head_l2 = _setup_model(cfg, data.classes, echo)
    cfg = cfg.replace(model=arch)
    if group.main:
        save_config(cfg, run_dir / "config.yaml")
        if data.split_record is not None:
            ckpt.write_text(run_dir / "split.json", json.dumps(data.split_record, indent=1))
    if group.backend:
        echo(f"data parallel: {group.world} processes ({group.backend}, {device}), batch "
             f"{cfg.batch_size} per process, effective batch {cfg.batch_size * group.world}, "
             f"{torch.get_num_threads()} torch thread(s) each")

    run = _Run(cfg, data, model, pre, loss_kind, head_l2, device, run_dir, echo, progress, warn,
               group)
    if resume:
        run.restore()
        if not group.agree(run.loop["epoch"]):  # a folder each node has its own copy of
            raise MienError(f"{run_dir}: the processes found different saved epochs in it; on "
                            "several nodes, put the run folder on a file system they share")
    result = run.finish(run.fit())
    if result.stopped != "interrupted":  # Ctrl-C reaches each process at its own moment
        group.barrier()  # the others wait for process 0's files
    return result


def _train_process(cfg: dict, resume: bool, progress: bool, error_dir: str) -> RunResult:
    """One of `train_processes`'s processes."""
    from mien.training.distributed import report_failure

    try:
        result = train(TrainConfig.from_dict(cfg), resume=resume, progress=progress)
    except MienError as exc:
        report_failure(error_dir, exc)  # exits
    if result.stopped == "interrupted":  # the launcher, stopped too, reads no results: a
        sys.exit(130)  # process that returned one would wait for it to be read
    return result


def train_processes(cfg: TrainConfig, devices: int, *, resume: bool = False,
                    progress: bool = True) -> RunResult:
    """`train` in `devices` data-parallel processes on this machine (one per GPU, or CPU
    processes sharing the cores), as `torchrun --nproc-per-node DEVICES` would start them;
    `cfg.batch_size` is per process. Returns process 0's result."""
    from mien.training.distributed import check_devices, spawn

    check_devices(devices, cfg.device)
    if cfg.repeats > 1:
        raise ConfigError(f"--repeats {cfg.repeats} with --devices: train the seeds one after "
                          "another (--seed K), each on the processes")
    if devices == 1:
        return train(cfg, resume=resume, progress=progress)
    return spawn(_train_process, (cfg.to_dict(), resume, progress), devices)


def _decode(cfg: TrainConfig, split_record: dict | None, echo) -> TrainData:
    pre = preprocess_for(cfg)
    echo(f"decoding images for {cfg.model or cfg.transfer_from} at "
         f"{pre.input_size[0]}x{pre.input_size[1]} {pre.color} ...")
    t0 = time.perf_counter()
    data = prepare(cfg, pre, split_record)
    echo(f"decoded {len(data.train_y)} training and {len(data.val_y)} validation images "
         f"in {time.perf_counter() - t0:.1f}s")
    return data


class _Run:
    """One run's mutable state (model, optimizer, loop counters), one method per phase."""

    def __init__(self, cfg: TrainConfig, data: TrainData, model, pre: Preprocess, loss_kind: str,
                 head_l2: float, device: str, run_dir: Path, echo, progress: bool,
                 warn: Callable[[str], None] = warn_on_stderr, group=None):
        import torch

        from mien.training.distributed import SINGLE, train_step
        from mien.training.optim import activation_for, class_weights, make_loss, make_optimizer

        self.cfg, self.data, self.model, self.pre = cfg, data, model, pre
        if cfg.train_blur_sigma is None:
            self.train_pre = pre
        else:
            self.train_pre = dataclasses.replace(pre, blur_sigma=cfg.train_blur_sigma)
        self.device, self.run_dir, self.echo, self.progress = device, run_dir, echo, progress
        self.warn, self.group = warn, group or SINGLE
        model.to(device)
        if device == "cpu":  # NHWC: ~2x faster depthwise/3x3 convolutions on CPU
            model.to(memory_format=torch.channels_last)
        if cfg.freeze:
            for p in model.backbone_parameters():
                p.requires_grad_(False)
            echo(f"frozen: the backbone ({_count(model.backbone_parameters()):,} parameters, "
                 f"BatchNorm statistics too); training the head "
                 f"({_count(model.head_parameters()):,})")

        self.train_x, self.train_y, self.train_aux = data.train_x, data.train_y, data.train_aux
        if cfg.mirror_double:
            self.train_x, self.train_y = add_mirrored(self.train_x, self.train_y)
            if self.train_aux is not None:  # a mirror keeps every attribute
                self.train_aux = np.concatenate([self.train_aux, self.train_aux])
        self.pipeline = build_augmentation(cfg, pre.input_size)
        weights = class_weights(self.train_y, len(data.classes), cfg.class_weights)
        self.loss_fn = make_loss(loss_kind, label_smoothing=cfg.label_smoothing, weights=weights)
        self.teacher_p = None
        if cfg.teacher:  # offline distillation: the teacher's view of each training image
            from mien.training.distill import teacher_probabilities

            self.teacher_p = teacher_probabilities(cfg.teacher, self.train_x, data.classes, echo)
            self.class_w = None if weights is None else torch.as_tensor(weights)
        # Keras-style kernel_regularizer: L2 on the output layer's weights only (model_info).
        self.head_l2, self.head_weights = head_l2, [model.classifier.weight]
        self.optimizer = make_optimizer(cfg, model,
                                        transfer=bool(cfg.transfer_from or cfg.pretrained))
        self.aux_head = None
        if data.train_aux is not None:  # multi-task: a linear head on the embedding, not shipped
            self.aux_head = torch.nn.Linear(model.classifier.in_features,
                                            data.train_aux.shape[1]).to(device)
            self.optimizer.add_param_group({"params": list(self.aux_head.parameters()),
                                            "lr": cfg.lr, "name": "aux"})
            self.aux_loss = torch.nn.BCEWithLogitsLoss()
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.step = train_step(model, self.aux_head, self.group)
        # every process takes batch_size images a step: together a batch of this many
        self.batch = cfg.batch_size * self.group.world
        self.steps_per_epoch = max(1, -(-len(self.train_y) // self.batch))
        self.prep_threads = cfg.num_workers or min(
            4, max(1, (os.cpu_count() or 1) // self.group.local_world))

        self.use_amp = cfg.amp and device.startswith("cuda")
        bf16 = self.use_amp and torch.cuda.is_bf16_supported()
        self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and not bf16)

        self.record = ckpt.model_record(
            arch=cfg.model, labels=data.classes, preprocess=pre, in_channels=pre.channels,
            model_kwargs=getattr(model, "model_kwargs", {}), activation=activation_for(loss_kind),
            loss=loss_kind, trained_on=str(cfg.data), run=run_dir.name, tta=cfg.tta,
            framing=cfg.framing.to_dict())
        self.loop = {"epoch": 0, "history": [], "best_acc": -1.0, "best_epoch": 0,
                     "train_seconds": 0.0, "images_seen": 0, "processes": self.group.world}
        self.best_state: dict | None = None
        self.best_pred: np.ndarray | None = None
        self.budget = cfg.max_minutes * 60.0 if cfg.max_minutes else None
        self.t_start = time.perf_counter()  # of this invocation: the budget is its own

    def restore(self) -> None:
        """Weights, optimizer and loop state of the last saved epoch; the best weights so far.
        A run killed before it saved an epoch starts from epoch 1."""
        state_file = self.run_dir / ckpt.STATE_FILE
        if not state_file.is_file():
            self.echo(f"{self.run_dir}: no epoch was saved before the run stopped; starting it "
                      "from epoch 1")
            if self.group.main:
                for name in (ckpt.MODEL_FILE, ckpt.LAST_FILE):  # of that unsaved epoch, if any
                    (self.run_dir / name).unlink(missing_ok=True)
            return
        saved = ckpt.load_train_state(state_file, self.optimizer)
        self.loop = saved.loop
        before, now = self.loop.get("processes", 1), self.group.world
        if before != now:
            self.warn(f"{self.run_dir} trained on {before} process(es), resumed on {now}: the "
                      f"effective batch goes from {self.cfg.batch_size * before} to "
                      f"{self.batch} from epoch {self.loop['epoch'] + 1}; to keep it, resume "
                      f"with --devices {before} (or torchrun --nproc-per-node {before})")
            self.loop["processes"] = now
        modules = dict(saved.modules) or self._weights_beside(state_file)
        self.model.load_state_dict(modules["model"])
        if self.aux_head is not None:
            self.aux_head.load_state_dict(modules["aux"])
        best_epoch, best = self.loop["best_epoch"], self.run_dir / ckpt.MODEL_FILE
        if best.is_file() and ckpt.read_record(best).get("epoch") == best_epoch:
            self.best_state = ckpt.load_weights(best)[0]
        elif best_epoch and best_epoch == self.loop["epoch"]:
            # killed after saving the state of its best epoch, before writing that epoch's
            # model file: the state holds the same weights
            self.best_state = {k: v.clone() for k, v in modules["model"].items()}
        elif best_epoch:
            raise ModelFileError(f"{best}: missing or not the best epoch ({best_epoch}) of "
                                 f"{state_file}; start the run again with another --out")
        self.echo(f"resuming {self.run_dir} after epoch {self.loop['epoch']}")

    def _weights_beside(self, state_file: Path) -> dict[str, dict]:
        """Modules of a state file written before the weights moved into it: last.safetensors
        (and the aux head's file), which must be of the same epoch."""
        weights, record = ckpt.load_weights(self.run_dir / ckpt.LAST_FILE)
        if record.get("epoch") != self.loop["epoch"]:
            raise ModelFileError(f"{self.run_dir / ckpt.LAST_FILE}: epoch {record.get('epoch')}, "
                                 f"but {state_file} is of epoch {self.loop['epoch']} (killed "
                                 "while saving); start the run again with another --out")
        modules = {"model": weights}
        if self.aux_head is not None:
            from safetensors.torch import load_file

            modules["aux"] = load_file(str(self.run_dir / AUX_FILE))
        return modules

    def _input(self, batch: np.ndarray, pre: Preprocess | None = None):
        import torch

        pre = pre or self.pre
        return torch.from_numpy(pre.normalize(batch) if pre.is_resize_only else pre(batch))

    def _batches(self, epoch: int):
        """(x, y, aux targets, teacher probabilities) training batches, augmented on threads a
        few batches ahead of the model."""
        import torch

        from mien.training.distributed import shard

        cfg, n, group = self.cfg, self.steps_per_epoch, self.group
        # One generator per epoch and per batch: the same batches whatever the thread timing,
        # and a resumed run replays the epochs it has not seen yet exactly.
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.train_y))
        order = shard(order, group)  # this process's share of every batch
        # each process augments its own share its own way
        tail = [group.rank] if group.backend else []

        def make(i: int):
            idx = np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size])
            rng = np.random.default_rng([cfg.seed, epoch, i, *tail])
            x = self._input(augment_batch(self.train_x[idx], self.pipeline, rng), self.train_pre)
            aux = None if self.aux_head is None else torch.from_numpy(self.train_aux[idx])
            soft = None if self.teacher_p is None else torch.from_numpy(self.teacher_p[idx])
            return x, torch.from_numpy(self.train_y[idx]), aux, soft

        with ThreadPoolExecutor(max_workers=self.prep_threads) as pool:
            ahead = [pool.submit(make, i) for i in range(min(self.prep_threads + 1, n))]
            for i in range(n):
                cur = ahead.pop(0).result()
                if i + len(ahead) + 1 < n:
                    ahead.append(pool.submit(make, i + len(ahead) + 1))
                yield cur

    def _autocast(self):
        import torch

        return torch.autocast(device_type="cuda", dtype=self.amp_dtype, enabled=self.use_amp)

    def evaluate(self) -> tuple[float, float, np.ndarray]:
        """Validation loss, accuracy and predicted class per image."""
        import torch

        from mien.training.optim import predict

        self.model.eval()
        # each process scores a slice of the validation images
        bounds = np.linspace(0, len(self.data.val_y), self.group.world + 1).astype(int)
        lo, hi = bounds[self.group.rank], bounds[self.group.rank + 1]
        vx, vy = self.data.val_x[lo:hi], self.data.val_y[lo:hi]
        total, preds = 0.0, [np.zeros(0, np.int64)]
        with torch.no_grad(), self._autocast():
            for s in range(0, len(vy), VAL_BATCH):
                x = self._input(vx[s:s + VAL_BATCH]).to(self.device)
                y = torch.from_numpy(vy[s:s + VAL_BATCH]).to(self.device)
                logits = self.model(x)
                total += float(self.loss_fn(logits, y)) * len(y)
                if self.cfg.tta == "flip":  # as inference does: mean of the two probabilities
                    logits = _mean_probability(logits, self.model(torch.flip(x, dims=[3])),
                                               self.record["activation"])
                preds.append(predict(logits).cpu().numpy())
        pred = self.group.concat(np.concatenate(preds), np.diff(bounds))
        total = self.group.sum([total])[0]
        vy = self.data.val_y
        return total / len(vy), float((pred == vy).mean()), pred

    def _over_budget(self) -> bool:
        if not self.budget:
            return False
        return self.group.any(time.perf_counter() - self.t_start > self.budget)

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training set (cut short when the time budget runs out)."""
        import torch

        from mien.training.optim import lr_factor, predict

        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        # dropout: replayable per epoch, each process its own masks
        torch.manual_seed(cfg.seed * 100_003 + epoch + self.group.rank * 1_000_003)
        _set_modes(model, cfg.freeze)
        # Sums stay on the device and are read every few steps: reading them each step would
        # stall a GPU on every batch.
        sum_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen, t0 = 0, time.perf_counter()
        bar = _progress(self.steps_per_epoch, f"epoch {epoch}/{cfg.epochs}", self.progress)
        try:
            for step, (x, y, aux, soft) in enumerate(self._batches(epoch)):
                global_step = (epoch - 1) * self.steps_per_epoch + step
                spent = (time.perf_counter() - self.t_start) / self.budget if self.budget else None
                factor = lr_factor(global_step, self.steps_per_epoch, cfg, spent)
                for g, base in zip(optimizer.param_groups, self.base_lrs, strict=True):
                    g["lr"] = base * factor
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                with self._autocast():
                    logits, aux_logits = self.step(x)
                    loss = self.loss_fn(logits, y)
                    if soft is not None:
                        from mien.training.distill import distill_loss

                        w = cfg.distill_weight
                        loss = (1 - w) * loss + w * distill_loss(
                            logits, soft.to(self.device), y, temperature=cfg.distill_temperature,
                            class_weights=self.class_w)
                    if aux is not None:
                        loss = loss + cfg.aux_weight * self.aux_loss(
                            aux_logits.float(), aux.to(self.device))
                    if self.head_l2:
                        loss = loss + self.head_l2 * sum((w.float() ** 2).sum()
                                                         for w in self.head_weights)
                optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(optimizer)
                self.scaler.update()
                sum_loss += loss.detach().float() * len(y)
                correct += (predict(logits) == y).sum()
                seen += len(y)
                bar.update(1)
                if step % 10 == 0 or step + 1 == self.steps_per_epoch:
                    mean_loss = float(sum_loss) / seen
                    if not np.isfinite(mean_loss):
                        raise MienError(f"loss became {mean_loss} in epoch {epoch}; lower --lr "
                                        "or add --warmup-epochs")
                    bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{float(correct) / seen:.3f}")
                if self._over_budget():
                    break
        finally:
            bar.close()
        sum_loss, correct, seen = self.group.sum([sum_loss, correct, seen])  # of all processes
        row = {"epoch": epoch, "train_loss": sum_loss / seen, "train_accuracy": correct / seen,
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
               "images": int(seen)}
        if self.group.backend:
            row["processes"] = self.group.world
        return row

    def save_last(self) -> None:
        """The state file first: it alone is what --resume reads, replaced in one step, so a
        kill at any moment leaves the previous epoch's or this one's, whole."""
        if not self.group.main:
            return
        modules = {"model": self.model.state_dict()}
        if self.aux_head is not None:
            modules["aux"] = self.aux_head.state_dict()
        ckpt.save_train_state(self.run_dir / ckpt.STATE_FILE, self.optimizer, self.loop, modules)
        ckpt.save_weights(self.run_dir / ckpt.LAST_FILE, modules["model"],
                          {**self.record, "epoch": self.loop["epoch"]})

    def fit(self) -> str:
        """Epochs until done, early stopping, the time budget or Ctrl-C; returns which."""
        cfg, loop = self.cfg, self.loop
        self.t_start, seconds_before = time.perf_counter(), loop["train_seconds"]
        try:
            while loop["epoch"] < cfg.epochs:
                row = self.train_epoch(loop["epoch"] + 1)
                val_loss, val_acc, pred = self.evaluate()
                val_bal = balanced_accuracy(confusion_matrix(self.data.val_y, pred,
                                                             len(self.data.classes)))
                row.update(val_loss=val_loss, val_accuracy=val_acc,
                           val_balanced_accuracy=val_bal)
                epoch = loop["epoch"] = row["epoch"]
                loop["train_seconds"] = seconds_before + time.perf_counter() - self.t_start
                loop["images_seen"] += row["images"]
                loop["history"].append(row)
                score = val_bal if cfg.select == "balanced_accuracy" else val_acc
                improved = score > loop.get("best_score", loop["best_acc"])
                if improved:
                    loop["best_score"] = score
                    loop["best_acc"], loop["best_epoch"], self.best_pred = val_acc, epoch, pred
                    self.best_state = {k: v.detach().cpu().clone()
                                       for k, v in self.model.state_dict().items()}
                self.save_last()
                # after the state, which restore() takes it from if killed here
                if improved and self.group.main:
                    ckpt.save_weights(self.run_dir / ckpt.MODEL_FILE, self.best_state,
                                      {**self.record, "epoch": epoch, "val_accuracy": val_acc})
                self.echo(f"epoch {epoch}: train loss {row['train_loss']:.4f} "
                          f"acc {row['train_accuracy']:.4f} | val loss {val_loss:.4f} "
                          f"acc {val_acc:.4f} bal {val_bal:.4f}{' *' if improved else ''} "
                          f"({row['seconds']:.1f}s)")
                if self._over_budget():
                    return "time_budget"
                if cfg.patience and epoch - loop["best_epoch"] >= cfg.patience:
                    return "early_stopping"
        except KeyboardInterrupt:
            if not loop["history"]:  # a part of epoch 1 is not worth keeping
                self.echo(f"interrupted before any epoch finished: nothing saved; start again "
                          f"with `mien train --resume {self.run_dir}`")
                return "interrupted"
            self.save_last()  # weights as they are; --resume redoes the unfinished epoch
            self.echo(f"interrupted: saved {self.run_dir / ckpt.LAST_FILE}; continue with "
                      f"`mien train --resume {self.run_dir}`")
            return "interrupted"
        return "completed"

    def finish(self, stopped: str) -> RunResult:
        """Best weights back in the model, its temperature fitted on validation, ONNX export,
        metrics.json and the plots."""
        loop, calibration = self.loop, None
        final_acc = loop["history"][-1]["val_accuracy"] if loop["history"] else float("nan")
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)  # the run's model is its best epoch
            if stopped != "interrupted" and self.best_pred is None:  # resumed after the best
                self.best_pred = self.evaluate()[2]  # epoch (every process: it is collective)
            if stopped != "interrupted" and self.group.main:
                calibration = self.calibrate()
                record = {**self.record, "epoch": loop["best_epoch"],
                          "val_accuracy": loop["best_acc"],
                          "temperature": calibration.temperature,
                          "calibration": {**calibration.to_dict(), "data": "validation split"}}
                ckpt.save_weights(self.run_dir / ckpt.MODEL_FILE, self.best_state, record)
                ckpt.export_onnx(self.model.cpu(), record, self.run_dir / ckpt.ONNX_FILE)
        result = RunResult(self.run_dir, loop["best_acc"], final_acc, loop["best_epoch"],
                           loop["epoch"], stopped, loop["train_seconds"])
        if not loop["history"] or not self.group.main:  # interrupted in epoch 1: no
            return result  # metrics.json, so a new run may take the folder over (claim_run_dir)
        warnings = run_warnings(loop["history"], self.train_y, self.best_pred,
                                self.data.classes, loop["best_epoch"])
        for warning in warnings:
            self.warn(warning)
        _write_metrics(self.run_dir, self.cfg, self.data, loop, result, self.best_pred,
                       self.device, calibration, warnings, self.group)
        return result

    def calibrate(self):
        """The temperature of the best weights, fitted on the validation images as inference
        will see them: float32 outputs, each view divided by T before flip TTA averages them
        (mien.models.loading)."""
        import torch

        from mien.evaluation.calibration import calibrate

        self.model.eval()
        outputs = []
        with torch.no_grad():
            for s in range(0, len(self.data.val_y), VAL_BATCH):
                x = self._input(self.data.val_x[s:s + VAL_BATCH]).to(self.device)
                views = [self.model(x).float()]
                if self.cfg.tta == "flip":
                    views.append(self.model(torch.flip(x, dims=[3])).float())
                outputs.append(torch.stack(views).cpu().numpy())
        result = calibrate(np.concatenate(outputs, axis=1), self.data.val_y,
                           self.record["activation"])
        self.echo(f"calibrated on {result.n} validation images: temperature "
                  f"{result.temperature:.3f}, ECE {result.ece_before:.4f} -> "
                  f"{result.ece_after:.4f}")
        return result


def run_warnings(history: list[dict], train_y: np.ndarray, val_pred: np.ndarray | None,
                 classes: tuple[str, ...], best_epoch: int) -> list[str]:
    """What makes a run's model suspect though nothing failed: an epoch the time budget cut
    short, and a chosen model that answers fewer classes on validation than it learned."""
    out = [f"epoch {h['epoch']} saw {h['images']:,} of {len(train_y):,} training images: the "
           "time budget (--max-minutes) ran out; give more minutes or fewer --epochs"
           for h in history if h["images"] < len(train_y)]
    trained = np.unique(train_y)
    if val_pred is not None and len(np.unique(val_pred)) < len(trained):
        answered = ", ".join(classes[i] for i in np.unique(val_pred))
        out.append(f"the chosen model (epoch {best_epoch}) answers only {answered} on the "
                   f"{len(val_pred):,} validation images, though trained on {len(trained)} "
                   "classes: train longer (--epochs, --max-minutes) or check the data")
    return out


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _write_metrics(run_dir: Path, cfg: TrainConfig, data: TrainData, loop: dict,
                   result: RunResult, best_pred: np.ndarray | None, device: str,
                   calibration=None, warnings: list[str] | None = None, group=None) -> None:
    from mien.training.plots import plot_confusion, plot_curves

    k = len(data.classes)
    world = group.world if group else 1
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
        # batch_size is per process; together they take a batch of effective_batch_size
        "data_parallel": {"processes": world, "backend": group.backend if group else None,
                          "batch_size_per_process": cfg.batch_size,
                          "effective_batch_size": cfg.batch_size * world},
    }
    if warnings:
        metrics["warnings"] = warnings
    if data.aux_names:
        metrics["aux_attributes"] = list(data.aux_names)
    if calibration is not None:
        metrics["calibration"] = calibration.to_dict()
    if best_pred is not None:
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (data.val_y, best_pred), 1)
        metrics["confusion"] = cm.tolist()
        plot_confusion(cm, data.classes, run_dir / "confusion.png",
                       title=f"validation, epoch {result.best_epoch}")
    if loop["history"]:
        plot_curves(loop["history"], run_dir / "curves.png")
    ckpt.write_text(run_dir / "metrics.json", json.dumps(metrics, indent=1))
