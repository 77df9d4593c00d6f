"""MTCNN on ONNX Runtime (the bundled nets) against the torch nets it was converted from, on the
same photos with the same detector code: recall at IoU >= 0.4, false detections per photo and
median detect() time per photo on one thread, the two backends taking turns photo by photo so
load on the machine falls on both alike. Then each net alone at the input sizes a photo gives
it (P-Net: pyramid levels of 60x60 to 288x384; R-Net, O-Net: batches of candidates), median ms
per call on one thread for each backend: where the whole detector's ratio comes from.

    python benchmarks/mtcnn.py [--limit 300] [--out benchmarks/results/mtcnn.json]

Needs torch and facenet-pytorch's weights for the torch side (tools/export_mtcnn.py). Data:
../shared/data (or $MIEN_DATA): the first --limit GENKI-SZSL photos and the 4 VOC group photos.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import torch
    from _common import set_threads, write_results  # benchmarks/ is sys.path[0]

    from mien.data.io import read_image
    from mien.detection.evaluate import match_boxes, read_genki_szsl, read_imglab
    from mien.detection.mtcnn import MTCNNDetector

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MIEN_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mtcnn.json")
    args = parser.parse_args()

    set_threads(1)
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("export_mtcnn", ROOT / "tools/export_mtcnn.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # the bundled nets run on one ONNX Runtime thread (mien.detection.mtcnn), the torch ones on
    # one torch thread
    backends = {"onnxruntime": MTCNNDetector(), "torch": MTCNNDetector(nets=tool.torch_nets())}

    sets = {"genki": read_genki_szsl(args.data / "detection/genki_szsl", limit=args.limit),
            "voc": read_imglab(args.data / "detection/voc_faces/boxes.xml")}
    rows = []
    for set_name, items in sets.items():
        score = {b: {"found": 0, "false": 0, "faces": 0, "ms": []} for b in backends}
        for path, truth in items:
            image = read_image(path)
            for name, detector in backends.items():
                start = time.perf_counter()
                found = detector.detect(image)
                score[name]["ms"].append((time.perf_counter() - start) * 1000)
                hit, extra = match_boxes(truth, [f.box for f in found])
                s = score[name]
                s["found"], s["false"], s["faces"] = (s["found"] + hit, s["false"] + extra,
                                                      s["faces"] + len(truth))
        for name, s in score.items():
            rows.append({"set": set_name, "backend": name, "photos": len(items),
                         "faces": s["faces"], "recall": round(s["found"] / s["faces"], 4),
                         "false_per_photo": round(s["false"] / len(items), 4),
                         "median_ms": round(statistics.median(s["ms"]), 2)})
    print(f"{'set':<6} {'backend':<12} {'photos':>6} {'recall':>7} {'false/photo':>12} "
          f"{'ms/photo':>9}")
    for r in rows:
        print(f"{r['set']:<6} {r['backend']:<12} {r['photos']:>6} {r['recall']:>7.4f} "
              f"{r['false_per_photo']:>12.3f} {r['median_ms']:>9.2f}")
    speedups = {}
    for set_name in sets:
        pair = {r["backend"]: r for r in rows if r["set"] == set_name}
        speedups[set_name] = round(pair["torch"]["median_ms"] / pair["onnxruntime"]["median_ms"], 2)
        print(f"{set_name}: onnxruntime {speedups[set_name]}x the speed of torch")
    nets = net_times(backends)
    print(f"\n{'net':<5} {'input':<16} {'onnxruntime ms':>15} {'torch ms':>9} {'ratio':>6}")
    for r in nets:
        print(f"{r['net']:<5} {'x'.join(map(str, r['input'])):<16} {r['onnxruntime_ms']:>15.3f} "
              f"{r['torch_ms']:>9.3f} {r['ratio']:>6.2f}")
    load = os.getloadavg()[0]
    write_results(args.out, "mtcnn", f"python benchmarks/mtcnn.py --limit {args.limit}",
                  load_average_at_end=round(load, 2), threads=1, results=rows,
                  speedup=speedups, nets=nets)


NET_INPUTS = {"pnet": [(1, 3, 60, 60), (1, 3, 115, 107), (1, 3, 288, 384)],
              "rnet": [(1, 3, 24, 24), (100, 3, 24, 24)],
              "onet": [(1, 3, 48, 48), (10, 3, 48, 48)]}


def net_times(backends: dict, calls: int = 50) -> list[dict]:
    """Median ms per call of each net of each backend on the same random input, in turns."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for net, shapes in NET_INPUTS.items():
        runs = {name: getattr(d, net) for name, d in backends.items()}
        for shape in shapes:
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            ms: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(calls):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run(x)
                    ms[name].append((time.perf_counter() - start) * 1000)
            med = {name: statistics.median(v[5:]) for name, v in ms.items()}  # after warm-up
            rows.append({"net": net, "input": list(shape),
                         "onnxruntime_ms": round(med["onnxruntime"], 3),
                         "torch_ms": round(med["torch"], 3),
                         "ratio": round(med["torch"] / med["onnxruntime"], 2)})
    return rows


if __name__ == "__main__":
    main()
