"""Convert MTCNN's three nets (facenet-pytorch 2.6.0's MIT-licensed weights) to the ONNX files
mien ships, so `--detector mtcnn` and `--landmarks mtcnn` run on ONNX Runtime without torch.

Needs torch and the weights: `pip install 'mien[train]' && pip install --no-deps
facenet-pytorch==2.6.0` (its metadata pins an old torch; its Python is never imported, only
`data/{p,r,o}net.pt` read with `torch.load(weights_only=True)`).

    python tools/export_mtcnn.py                     # writes mien/models/weights/mtcnn_*.onnx
    python tools/export_mtcnn.py --out /tmp/mtcnn    # elsewhere, e.g. to compare

Prints each file's SHA-256: `mien.detection.files.MODEL_FILES` must hold the same (a test
re-exports and compares the nets' outputs). The nets below are the torch definitions mien ran
until 2026-12 (mien.detection.mtcnn), kept here as the source of the ONNX graphs and as the
reference `torch_nets()` the equivalence test and `benchmarks/mtcnn.py` compare against.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "mien" / "models" / "weights"
OPSET = 17
# name -> (input shape with -1 for dynamic axes, output names)
NETS = {
    "pnet": ((1, 3, -1, -1), ("prob", "reg")),
    "rnet": ((-1, 3, 24, 24), ("prob", "reg")),
    "onet": ((-1, 3, 48, 48), ("prob", "reg", "marks")),
}


def facenet_weights() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("facenet-pytorch is not installed: pip install --no-deps "
                         "facenet-pytorch==2.6.0")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def build_nets():
    """MTCNN's P-, R- and O-Net as torch modules, weights loaded, in eval mode."""
    import torch
    from torch import nn

    class PNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)

    class RNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x))
            # The weights come from Caffe models trained on transposed (MATLAB) images.
            x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))
            return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)

    class ONet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
            return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)

    folder = facenet_weights()
    nets = {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}
    for name, net in nets.items():
        path = folder / f"{name}.pt"
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval()
    return nets


def torch_nets() -> dict:
    """The torch nets as mien's MTCNN calls its nets: float32 NCHW numpy in, numpy tuple out."""
    import torch

    def wrap(net):
        def run(x: np.ndarray) -> list[np.ndarray]:
            with torch.inference_mode():
                return [t.numpy() for t in net(torch.from_numpy(x))]
        return run

    return {name: wrap(net) for name, net in build_nets().items()}


def export(name: str, net) -> bytes:
    """One net as ONNX bytes, its dynamic axes named."""
    import torch

    shape, outputs = NETS[name]
    example = torch.zeros([d if d > 0 else 48 for d in shape])
    dynamic = {i: f"d{i}" for i, d in enumerate(shape) if d < 0}
    axes = {"x": dynamic, **{o: {0: "d0"} for o in outputs if 0 in dynamic}}
    buf = io.BytesIO()
    torch.onnx.export(net, example, buf, input_names=["x"], output_names=list(outputs),
                      dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, net in build_nets().items():
        data = export(name, net)
        path = args.out / f"mtcnn_{name}.onnx"
        path.write_bytes(data)
        print(f"{path}: {len(data):,} bytes, SHA-256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
