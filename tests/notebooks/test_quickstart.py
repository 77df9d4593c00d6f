"""notebooks/quickstart.ipynb, which the README links, runs top to bottom on the shared data:
executed here, in CI's one test command, so it never rots."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def outputs(nb) -> tuple[str, int]:
    """(printed text, number of PNG images) of the notebook's code cells."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    return text, images


def test_committed_notebook_shows_its_outputs_and_stays_small():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.outputs for c in nb.cells if c.cell_type == "code")
    text, images = outputs(nb)
    assert images == 4 and "SVM on its embeddings" in text
    assert NOTEBOOK.stat().st_size < 300_000  # downscaled PNGs: readable on GitHub, cheap in git


@pytest.mark.slow
def test_quickstart_runs_top_to_bottom(shared_data, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MIEN_DATA", str(shared_data))  # the kernel inherits it
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    # Raises CellExecutionError, naming the cell, at the first exception.
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text, images = outputs(nb)
    assert images == 4  # the annotated photo, two confusion matrices, training curves
    assert "face 0 at" in text and "SVM on its embeddings" in text
