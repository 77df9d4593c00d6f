"""Data-parallel training with torch.distributed: one process per GPU (NCCL), or N processes
sharing the CPU cores (gloo), started by `torchrun` or by `spawn` (`mien train --devices N`).

Every process holds the whole model and the whole decoded dataset, trains on its share of each
batch, and DDP averages the gradients: N processes with `batch_size` B take the steps one process
takes with batch N x B. Process 0 alone logs, shows progress and writes the run folder.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
import torch.distributed as torch_dist

from mien.errors import MienError
from mien.training.config import ConfigError

# How long a process waits in a collective for the others (a hung or lost process; a crashed
# one ends the job at once, torchrun's agent kills the rest). Decoding a large dataset happens
# between two collectives, so this must outlast it.
TIMEOUT = timedelta(minutes=30)


def _wants_cuda(device: str) -> bool:
    """Whether --device DEVICE trains on GPUs."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: no CUDA device is visible; use --device cpu")
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Group:
    """This process's place among the processes training one run; world 1 is a plain run."""

    rank: int = 0
    world: int = 1
    local_world: int = 1  # processes on this machine, which share its cores
    backend: str | None = None  # gloo | nccl; None: not distributed
    device: str | None = None  # cuda:LOCAL_RANK under NCCL; None: the config's

    @property
    def main(self) -> bool:
        return self.rank == 0

    def cpu_threads(self) -> int:
        """Torch threads per process so the processes of a machine share its cores; 0 keeps
        torch's default (a plain run)."""
        return max(1, cpu_cores() // self.local_world) if self.backend else 0

    def _comm_device(self) -> str:
        return self.device if self.backend == "nccl" else "cpu"

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes."""
        if not self.backend:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self._comm_device())
        torch_dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every process when it is true on one: decisions that stop the loop (the time
        budget) must be the same everywhere, or the others wait in a collective forever."""
        return self.sum([float(flag)])[0] > 0 if self.backend else flag

    def concat(self, part: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
        """The int64 parts of every process, in rank order; `sizes` is each one's length."""
        if not self.backend:
            return part
        padded = torch.zeros(max(*sizes, 1), dtype=torch.int64,  # fewer rows than processes
                             device=self._comm_device())
        padded[:len(part)] = torch.from_numpy(part.astype(np.int64))
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch_dist.all_gather(parts, padded)
        return np.concatenate([p[:n].cpu().numpy() for p, n in zip(parts, sizes, strict=True)])

    def agree(self, value: int) -> bool:
        """Whether every process holds the same `value` (the same answer on every process)."""
        if not self.backend:
            return True
        return bool((self.concat(np.array([value]), [1] * self.world) == value).all())

    def barrier(self) -> None:
        if self.backend:
            torch_dist.barrier()

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """fn() run by process 0 alone (it writes files), its result given to every process;
        a MienError it raises is raised by every process, so none waits for the failed one."""
        if not self.backend:
            return fn()
        box: list[Any] = [None]
        if self.main:
            try:
                box[0] = ("ok", fn())
            except MienError as exc:
                box[0] = ("error", exc)
        torch_dist.broadcast_object_list(box, src=0,
                                         device=torch.device(self._comm_device()))
        status, value = box[0]
        if status == "error":
            raise value
        return value


SINGLE = Group()


def torchrun_world() -> int:
    """The number of processes torchrun (or `spawn`) started this one among; 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def refuse_under_torchrun(what: str) -> None:
    if torchrun_world() > 1:
        raise ConfigError(f"{what} does not run data-parallel: start it without torchrun "
                          "(or --devices)")


@contextmanager
def joined(device: str) -> Iterator[Group]:
    """The process group torchrun's variables describe, joined for the duration of a run (left
    afterwards); SINGLE when started alone. `device` is the run's --device option."""
    world = torchrun_world()
    if world <= 1:
        yield SINGLE
        return
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if device.startswith("cuda:"):
        raise ConfigError(f"--device {device}: each process takes the GPU of its local rank; "
                          "give --device cuda (or auto)")
    cuda = _wants_cuda(device)
    if cuda:
        visible = torch.cuda.device_count()
        if local_rank >= visible:
            raise ConfigError(f"process {rank} has local rank {local_rank}, but this machine "
                              f"shows {visible} GPU(s): start at most {visible} processes per "
                              "node (--nproc-per-node, --devices), or give --device cpu")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    group = Group(rank, world, local_world, backend, f"cuda:{local_rank}" if cuda else None)
    created = not torch_dist.is_initialized()
    if created:
        torch_dist.init_process_group(backend, timeout=TIMEOUT)
    # Ctrl-C reaches every process; process 0 saves the run, the others end at once, even while
    # they wait in a collective for a process 0 that has stopped taking part.
    interrupt = signal.getsignal(signal.SIGINT)
    if rank and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield group
    finally:
        if rank and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, interrupt)
        if created:
            torch_dist.destroy_process_group()


class TrainStep(torch.nn.Module):
    """What one training step calls: the model's logits, and with a multi-task head its logits
    on the embedding too. One module, so DDP averages the gradients of both."""

    def __init__(self, model: torch.nn.Module, aux_head: torch.nn.Module | None):
        super().__init__()
        self.model, self.aux_head = model, aux_head

    def forward(self, x):
        if self.aux_head is None:
            return self.model(x), None
        emb = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model.classifier(emb), self.aux_head(emb.flatten(1))


def train_step(model, aux_head, group: Group) -> torch.nn.Module:
    """TrainStep, wrapped in DistributedDataParallel when the run is distributed. BatchNorm
    statistics stay per process (SyncBatchNorm runs on GPUs only; mien keeps CPU and GPU runs
    alike): with batch B per process, BatchNorm normalises over B images, not N x B."""
    step = TrainStep(model, aux_head)
    if not group.backend:
        return step
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(group.device).index] if group.backend == "nccl" else None
    return DistributedDataParallel(step, device_ids=ids)


def shard(order: np.ndarray, group: Group) -> np.ndarray:
    """This process's share of an epoch's order, as torch's DistributedSampler cuts it: padded
    with its first items to a multiple of the world size, then every world-th item from the
    rank on. Batch i of every process together is then items [i*B*N, (i+1)*B*N) of the order:
    the batch one process takes with batch size B*N."""
    if group.world == 1:
        return order
    order = np.concatenate([order, order[:(-len(order)) % group.world]])
    return order[group.rank::group.world]


def check_devices(devices: int, device: str) -> None:
    """A number of processes this machine can run: one per GPU, at most one per CPU core."""
    if devices < 1:
        raise ConfigError(f"--devices {devices}: give the number of processes, 1 or more")
    if torchrun_world() > 1:
        raise ConfigError("--devices starts its own processes; under torchrun leave it out "
                          "(torchrun's --nproc-per-node sets them)")
    if device.startswith("cuda:"):
        raise ConfigError(f"--device {device} with --devices {devices}: process k uses GPU k; "
                          "give --device cuda (or auto), and CUDA_VISIBLE_DEVICES to pick GPUs")
    if _wants_cuda(device):
        visible = torch.cuda.device_count()
        if devices > visible:
            raise ConfigError(f"--devices {devices}: this machine shows {visible} GPU(s); give "
                              f"at most {visible}, or --device cpu for CPU processes")
    elif devices > cpu_cores():
        raise ConfigError(f"--devices {devices}: this machine has {cpu_cores()} CPU core(s), "
                          f"and each process needs one; give at most {cpu_cores()}")


def spawn(entry: Callable[..., Any], args: tuple, devices: int) -> Any:
    """entry(*args, error_dir) in `devices` processes on this machine, as torchrun would start
    them (same variables, a free port on localhost); returns process 0's result. A process that
    fails ends the others; its one-line message (written to error_dir/rank-K by `entry`) is
    raised here as a MienError."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=devices,
                          run_id=uuid.uuid4().hex, rdzv_backend="c10d",
                          rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.2)
    # The launcher logs each failure with a traceback of its own; the processes say what failed.
    loggers = [logging.getLogger(n) for n in ("torch.distributed.elastic",
                                              "torch.multiprocessing")]
    levels = [lg.level for lg in loggers]
    with tempfile.TemporaryDirectory(prefix="mien-ddp-") as error_dir:
        try:
            for lg in loggers:
                lg.setLevel(logging.CRITICAL)
            return elastic_launch(config, entry)(*args, error_dir)[0]
        except SignalException as exc:  # Ctrl-C or kill: the processes have been stopped
            raise KeyboardInterrupt from exc
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            message = Path(error_dir, f"rank-{rank}")
            if message.is_file():
                raise MienError(message.read_text()) from None
            how = (f"was killed by signal {-failure.exitcode}" if failure.exitcode < 0
                   else f"failed (exit code {failure.exitcode}); see its output above")
            raise MienError(f"process {rank} of {devices} {how}") from None
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def report_failure(error_dir: str, exc: MienError) -> NoReturn:
    """For `spawn`: leave this process's message and exit with its code, ending the job."""
    Path(error_dir, f"rank-{os.environ.get('RANK', '0')}").write_text(str(exc))
    sys.exit(exc.exit_code)
