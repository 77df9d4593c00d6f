#!/usr/bin/env bash
# Install mien into .venv (CPU torch for training included), then run the main job: analyze a
# photo with the bundled models (`./setup.sh PHOTO`, default: a GENKI photo from the shared
# data). `./setup.sh --install-only` stops after installing.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[train,serve,parquet,video,pandas,dev]"
[ "${1:-}" = "--install-only" ] && exit 0

DATA="${MIEN_DATA:-../shared/data}"
# The main job: every face in a photo with the bundled expression, smile and glasses models.
# ./setup.sh PHOTO analyzes your photo; without one, a GENKI photo from the shared data.
PHOTO="${1:-}"
if [ -z "$PHOTO" ] && [ -f "$DATA/detection/genki_szsl/files/file0001.jpg" ]; then
    PHOTO="$DATA/detection/genki_szsl/files/file0001.jpg"
fi
if [ -n "$PHOTO" ]; then
    .venv/bin/mien models list
    .venv/bin/mien analyze "$PHOTO"
else
    .venv/bin/mien --help
    echo "no photo given: run ./setup.sh PHOTO.jpg to analyze one" >&2
fi
