"""Data-parallel training (torch DDP, gloo on CPU): N processes with batch B train as one process
with batch N x B, a stopped distributed run resumes as if never stopped, and bad --devices
values or a failed process end in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as torch_dist
from safetensors.torch import load_file

from mien.cli.main import main
from mien.errors import MienError
from mien.training import distributed
from mien.training.config import TrainConfig
from mien.training.distributed import Group, report_failure, shard, spawn
from mien.training.fit import train

from .conftest import run_cli

PER_CLASS = 160  # 320 SMILEs faces: 256 to train on, 64 to validate
OPTIONS = dict(model="fer-a", val=0.2, augment=False, device="cpu", threads=1, epochs=2)


@pytest.fixture(scope="module")
def smiles(shared_data, tmp_path_factory) -> Path:
    """The first PER_CLASS faces of each SMILEs class, linked into a class-folder tree."""
    root = tmp_path_factory.mktemp("smiles")
    for name in ("smile", "no_smile"):
        files = sorted((shared_data / "smiles" / name).glob("*.jpg"))[:PER_CLASS]
        assert len(files) == PER_CLASS, f"{shared_data / 'smiles' / name}: too few faces"
        (root / name).mkdir()
        for f in files:
            (root / name / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="module")
def two_processes(smiles, tmp_path_factory) -> Path:
    """2 epochs in 2 processes of batch 16, started by `mien train --devices 2`."""
    out = tmp_path_factory.mktemp("ddp") / "two"
    run_cli("train", smiles, "--model", "fer-a", "--val", "0.2", "--no-augment", "--device",
            "cpu", "--threads", "1", "--epochs", "2", "--batch-size", "16", "--devices", "2",
            "--quiet", "--out", out)
    return out


def history(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["history"]


def test_each_batch_is_cut_as_distributed_sampler_cuts_it():
    """The processes' batch i together are batch i of one process with batch N x B."""
    for n, world, b in ((256, 2, 16), (67, 2, 8), (67, 3, 5), (5, 4, 2)):
        order = np.random.default_rng(n).permutation(n)
        shares = [shard(order, Group(rank=r, world=world, backend="gloo")) for r in range(world)]
        assert len({len(s) for s in shares}) == 1  # same steps everywhere, or DDP would hang
        padded = np.concatenate([order, order[:(-n) % world]])
        for i in range(-(-len(shares[0]) // b)):
            together = np.concatenate([s[i * b:(i + 1) * b] for s in shares])
            assert sorted(together) == sorted(padded[i * b * world:(i + 1) * b * world])


@pytest.mark.slow
def test_two_processes_train_as_one_with_their_effective_batch(smiles, two_processes, tmp_path):
    one = train(TrainConfig(data=str(smiles), batch_size=32, out=str(tmp_path / "one"),
                            **OPTIONS), progress=False).run_dir
    got, want = history(two_processes), history(one)
    # Same images in each step and averaged gradients: equal up to the order of float sums,
    # which training then amplifies (Adam moves a weight whose gradient is rounding noise by
    # about lr either way): one process on 2 threads instead of 1 differs by the same order.
    # Measured here: epoch 1's training loss within 2e-6, epoch 2's losses within 1e-3; both
    # processes on the same data instead (a broken cut) misses epoch 1's by 4e-2.
    assert got[0]["train_loss"] == pytest.approx(want[0]["train_loss"], rel=1e-4)
    for key in ("train_loss", "val_loss"):
        assert [h[key] for h in got] == pytest.approx([h[key] for h in want], rel=5e-3), key
    for key in ("train_accuracy", "val_accuracy"):  # one validation image may tip over
        assert [h[key] for h in got] == pytest.approx([h[key] for h in want], abs=1.01 / 64), key
    assert [h["images"] for h in got] == [h["images"] for h in want] == [256, 256]
    a, b = (load_file(str(r / "last.safetensors")) for r in (two_processes, one))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 0.02
    metrics = json.loads((two_processes / "metrics.json").read_text())
    assert metrics["data_parallel"] == {"processes": 2, "backend": "gloo",
                                        "batch_size_per_process": 16, "effective_batch_size": 32}
    assert [h["processes"] for h in got] == [2, 2]
    for name in ("model.safetensors", "model.onnx", "config.yaml", "curves.png"):
        assert (two_processes / name).is_file(), name


@pytest.mark.slow
def test_a_torchrun_run_resumes_as_if_never_stopped(smiles, two_processes, tmp_path):
    """Epoch 1 by `torchrun -m mien train`, epoch 2 by `mien train --resume --devices 2`."""
    out = tmp_path / "resumed"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    done = subprocess.run([*torchrun, "-m", "mien", "train", smiles, "--model", "fer-a",
                           "--val", "0.2", "--no-augment", "--device", "cpu", "--threads", "1",
                           "--epochs", "1", "--batch-size", "16", "--quiet", "--out", out],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run folder:") == 1, done.stdout  # process 0 alone speaks
    assert "batch 16 per process, effective batch 32" in done.stdout
    run_cli("train", "--resume", out, "--epochs", "2", "--devices", "2", "--quiet")
    got, want = history(out), history(two_processes)
    for key in ("train_loss", "val_loss", "val_accuracy"):  # the same sums in the same order
        assert [h[key] for h in got] == pytest.approx([h[key] for h in want], abs=1e-6), key


def test_a_two_process_run_resumes_on_one_with_a_warning(two_processes, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(two_processes, out)
    result = run_cli("train", "--resume", out, "--epochs", "3", "--quiet")
    assert ("trained on 2 process(es), resumed on 1: the effective batch goes from 32 to 16 "
            "from epoch 3") in result.stderr
    assert [h.get("processes") for h in history(out)] == [2, 2, None]
    assert json.loads((out / "metrics.json").read_text())["data_parallel"]["processes"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--devices", "0"], "--devices 0: give the number of processes, 1 or more"),
    (["--devices", str(distributed.cpu_cores() + 1)], "CPU core(s), and each process needs one"),
    (["--devices", "2", "--repeats", "2"], "train the seeds one after another"),
    (["--devices", "2", "--device", "cuda:1"], "process k uses GPU k"),
])
def test_bad_devices_end_in_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tmp_path), "--model", "fer-a", "--device", "cpu", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def fail_on_rank_1(error_dir: str) -> None:
    """Process 1 fails while process 0 waits for it in a collective."""
    torch_dist.init_process_group("gloo")
    if os.environ["RANK"] == "1":
        report_failure(error_dir, MienError("process 1 could not read its data"))
    torch_dist.barrier()


def test_a_failed_process_ends_the_others_at_once():
    t0 = time.perf_counter()
    with pytest.raises(MienError, match="process 1 could not read its data"):
        spawn(fail_on_rank_1, (), 2)
    assert time.perf_counter() - t0 < 60  # not the 30 minutes of the collectives' timeout
