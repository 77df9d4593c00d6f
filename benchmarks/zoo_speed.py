"""Speed of every zoo model on this CPU at its native input size.

Per model: trainable parameters, multiply-accumulates per image, training throughput (Adam,
batches of 64, 2 torch threads), batched inference throughput (batches of 8, 2 threads) in torch
and ONNX Runtime (and ONNX Runtime on 1 thread), and ONNX Runtime latency per face at batch 1 on
1 thread.

    python benchmarks/zoo_speed.py [--models 'mien-net-*'] [--seconds 3] [--out PATH]

Timings are the fastest of repeated runs. Prints a table and writes JSON (default
benchmarks/results/zoo_speed.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn

from mien.models import create_model, list_models, model_info
from mien.models.export import export_onnx
from mien.training.fit import cpu_name

TRAIN_BATCH = 64
# Inference batches of 8: at 64 the activations of the depthwise networks spill out of the
# CPU caches and mien-net-s drops from ~4,500 to ~850 faces/s on one ONNX Runtime thread
# (fer-a from ~5,600 to ~1,900); batches of 1-8 all run at full speed.
INFER_BATCH = 8
THREADS = 2


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of convolutions and dense layers for one image."""
    total = 0

    def hook(m, _inputs, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += out[0].numel() * k
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(x[:1])
    for h in handles:
        h.remove()
    return total


def timed(fn, seconds: float, min_runs: int = 2) -> float:
    """Fastest seconds per call after one warm-up, over ~`seconds` (at least min_runs calls).

    The fastest run, not the median: on a machine shared with other jobs it is the one least
    disturbed by them (as `timeit` advises)."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(name: str, seconds: float, workdir: Path, threads: int) -> dict:
    info = model_info(name)
    autoencoder = info.task == "autoencoder"
    torch.manual_seed(0)
    model = create_model(name, max(info.num_classes, 1))
    shape = (info.in_channels, *info.input_size)
    x = torch.randn(TRAIN_BATCH, *shape)
    xi = x[:INFER_BATCH]
    if autoencoder:
        target, loss_fn = x, nn.MSELoss()
    elif info.num_classes == 1:
        target, loss_fn = torch.randint(0, 2, (TRAIN_BATCH, 1)).float(), nn.BCEWithLogitsLoss()
    else:
        target, loss_fn = torch.randint(0, info.num_classes, (TRAIN_BATCH,)), nn.CrossEntropyLoss()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = count_macs(model, x)

    torch.set_num_threads(threads)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad()
        loss_fn(model(x), target).backward()
        opt.step()

    model.train()
    train_s = timed(train_step, seconds)

    model.eval()

    def torch_infer():
        with torch.no_grad():
            model(xi)

    torch_s = timed(torch_infer, seconds)

    path = export_onnx(model, workdir / f"{name}.onnx", info.input_size, info.in_channels,
                       {"arch": name})

    def session(threads: int) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    batched, single = session(threads), session(1)
    xb, x1 = xi.numpy(), x[:1].numpy()
    ort_s = timed(lambda: batched.run(None, {"input": xb}), seconds)
    # per core: on a shared machine a 1-thread run is disturbed less than a 2-thread one
    ort1_s = timed(lambda: single.run(None, {"input": xb}), seconds)
    one_s = timed(lambda: single.run(None, {"input": x1}), seconds, min_runs=20)
    return {
        "model": name,
        "input": list(shape),
        "params": params,
        "mmac": round(macs / 1e6, 2),
        "train_img_s": round(TRAIN_BATCH / train_s, 1),
        "torch_img_s": round(INFER_BATCH / torch_s, 1),
        "onnx_img_s": round(INFER_BATCH / ort_s, 1),
        "onnx_img_s_1thread": round(INFER_BATCH / ort1_s, 1),
        "onnx_ms_1thread": round(one_s * 1e3, 3),
    }


def print_table(rows: list[dict], threads: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mien zoo on {cpu_name()}: {threads} threads, training batch "
                        f"{TRAIN_BATCH}, inference batch {INFER_BATCH}; latency: batch 1, 1 thread")
    columns = [("model", "model"), ("input", "C,H,W"), ("params", "params"), ("mmac", "MMAC"),
               ("train_img_s", "train img/s"), ("torch_img_s", "torch img/s"),
               ("onnx_img_s", "ONNX img/s"), ("onnx_img_s_1thread", "ONNX img/s 1 thr"),
               ("onnx_ms_1thread", "ONNX ms/face")]
    for key, title in columns:
        table.add_column(title, justify="left" if key == "model" else "right", no_wrap=True)
    for r in rows:
        table.add_row(*[
            "x".join(map(str, r[k])) if k == "input" else f"{r[k]:,}" if k == "params"
            else str(r[k]) for k, _ in columns
        ])
    Console(width=max(120, Console().width)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*", help="shell pattern over list_models()")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="threads for training and batched inference (latency uses 1)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "zoo_speed.json")
    args = parser.parse_args()
    names = list_models(args.models)
    load = os.getloadavg()[0]  # other jobs on the machine slow every figure; keep the record
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows.append(bench(name, args.seconds, Path(tmp), args.threads))
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "onnxruntime": ort.__version__, "load_avg_1min_at_start": load},
        "train_batch": TRAIN_BATCH, "infer_batch": INFER_BATCH, "threads": args.threads,
        "results": rows,
    }, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
