"""Smiles on ordinary photos: smile models through `mien analyze`'s own pipeline on GENKI-SZSL
photos we labelled by eye (benchmarks/labels/genki_smiling.csv). How it works: benchmarks/_genki.py.

    python benchmarks/genki_smile.py [--models smile,runs/smile-new]

MODELS: bundled names, run folders or .onnx files (default: the bundled `smile`). Prints a table
and writes JSON (default benchmarks/results/genki_smile.json).
"""

from _genki import main

if __name__ == "__main__":
    main("smiling")
