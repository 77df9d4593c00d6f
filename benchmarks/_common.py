"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path


def set_threads(n: int) -> None:
    """OpenCV's and torch's pools (ONNX Runtime sessions keep the count they were made with)."""
    import cv2

    cv2.setNumThreads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def write_results(out: Path, benchmark: str, command: str, **fields) -> None:
    """The JSON every benchmark writes: its name, when, on what machine, how to rerun it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": benchmark,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "command": command, **fields}, indent=1) + "\n")
    print(f"written {out}")
