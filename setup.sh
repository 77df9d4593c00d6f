#!/usr/bin/env bash
# Install mien into .venv (CPU torch for training included), then run the main job on the
# bundled default. `./setup.sh --install-only` stops after installing.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[train,serve,dev]"
[ "${1:-}" = "--install-only" ] && exit 0

.venv/bin/mien --help
DATA="${MIEN_DATA:-../shared/data}"
if [ -d "$DATA/smiles" ]; then
    .venv/bin/mien data check "$DATA/smiles" || true  # exit 1 only means "findings were listed"
fi
