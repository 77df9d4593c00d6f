"""Eyeglasses on ordinary photos: glasses models through `mien analyze`'s own pipeline on GENKI-SZSL
photos we labelled by eye (benchmarks/labels/genki_eyeglasses.csv; sunglasses count, as in
CelebA). How it works and what the parts are: benchmarks/_genki.py.

    python benchmarks/genki_glasses.py [--models glasses,runs/glasses-new] [--part report]

MODELS: bundled names, run folders or .onnx files (default: the bundled `glasses`). Prints a
table and writes JSON (default benchmarks/results/genki_glasses.json).
"""

from _genki import main

if __name__ == "__main__":
    main("eyeglasses")
