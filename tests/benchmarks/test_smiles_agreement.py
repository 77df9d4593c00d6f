"""benchmarks/smiles_agreement.py: the blind second labelling of SMILEs' held-out photos and the
agreement it is scored with."""

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("smiles_agreement", BENCH / "smiles_agreement.py")
agreement_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agreement_bench)


def test_the_sample_is_200_distinct_photos_with_both_labels():
    sample = agreement_bench.read_sample()
    assert len(sample) == 200 and len({r["file"] for r in sample}) == 200
    assert {r["file"].split("/")[0] for r in sample} == {"smile", "no_smile"}
    assert {r["person"] for r in sample} == {0, 1} and 0 < sum(r["sure"] for r in sample) < 200
    smiles_says = np.array([r["smiles"] for r in sample])
    assert smiles_says.sum() == sum(r["file"].startswith("smile/") for r in sample)


def test_agreement_counts_only_answered_faces_where_asked():
    a, b = np.array([1, 0, 1, -1, 0]), np.array([1, 1, 1, 0, 0])
    keep = np.array([True, True, True, True, False])
    assert agreement_bench.agreement(a, b, keep) == {"n": 3, "agree": round(2 / 3, 4)}
    assert agreement_bench.agreement(a, b, np.zeros(5, bool)) == {"n": 0, "agree": None}


def test_the_sample_is_drawn_from_the_smile_cards_held_out_files(shared_data):
    from mien.models.cards import read_card, validation_dataset

    card = read_card("smile")
    raw = {**card, "data": {k: v for k, v in card["data"].items() if k != "reframe"}}
    held_out = {"/".join(Path(s).parts[-2:]) for s in validation_dataset(raw).sources}
    assert {r["file"] for r in agreement_bench.read_sample()} <= held_out
