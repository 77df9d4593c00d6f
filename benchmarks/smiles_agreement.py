"""How far do SMILEs' own labels go? Its labels, a second person's and the models' on the same
faces: 200 photos drawn at random from SMILEs' held-out part and labelled blind, by eye
(benchmarks/labels/smiles_heldout_sample.csv, which says how).

A model is measured against SMILEs' labels (issue 20's 0.96 target); this says how often a person
who never saw those labels agrees with them, so the target can be read beside what people agree
on. For each model: its agreement with SMILEs' labels and with the second labeller, on SMILEs'
64x64 crops as they are (as its card scores them) and on the face the bundled detector finds and
cuts with the model's framing (as `mien analyze` sees it); on all 200 and on the faces the
labeller was sure of.

    python benchmarks/smiles_agreement.py [--models smile,runs/X] [--data ../shared/data]

Prints a table and writes JSON (default benchmarks/results/smiles_agreement.json).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks/labels/smiles_heldout_sample.csv"


def read_sample(path: Path = LABELS) -> list[dict]:
    """[{file, smiles (SMILEs' label, 0/1 from its folder), person (0/1), sure (bool)}]."""
    with open(path) as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return [{"file": r["file"], "smiles": int(r["file"].split("/")[0] == "smile"),
                 "person": int(r["smiling"]), "sure": r["sure"] == "1"} for r in rows]


def agreement(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> dict:
    """Share of equal answers where `keep` (and both answered), with the count."""
    ok = keep & (a >= 0) & (b >= 0)
    return {"n": int(ok.sum()), "agree": round(float((a[ok] == b[ok]).mean()), 4)
            if ok.any() else None}


def model_answers(spec: str, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, str]:
    """(answers on SMILEs' crops, answers through the detector or -1 where no face, detector)."""
    from mien.inference.pipeline import Pipeline, framing_of
    from mien.models.loading import load_classifier

    clf = load_classifier(spec)
    col = list(clf.labels).index("smile")

    def answers(faces: list[np.ndarray]) -> np.ndarray:
        return (np.asarray(clf.predict_proba(faces))[:, col] >= 0.5).astype(int)

    pipe = Pipeline(None, {})
    found = [pipe.largest_face(image, framing_of(clf)) for image in images]
    through = np.full(len(images), -1)
    kept = [i for i, f in enumerate(found) if f is not None]
    if kept:
        through[kept] = answers([found[i][1] for i in kept])
    return answers(images), through, pipe.detector.name


def main() -> None:
    from _common import write_results  # benchmarks/ is sys.path[0] when run as a script

    from mien.data.io import read_image

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smile", help="comma-separated models")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MIEN_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/smiles_agreement.json")
    args = parser.parse_args()
    smiles = args.data / "smiles"
    sample = read_sample()
    missing = [r["file"] for r in sample if not (smiles / r["file"]).is_file()]
    if missing:
        raise SystemExit(f"{smiles}: {len(missing)} of the sample's photos are not there (first: "
                         f"{missing[0]}); pass --data or set MIEN_DATA")
    images = [read_image(smiles / r["file"], "rgb") for r in sample]
    truth = np.array([r["smiles"] for r in sample])
    person = np.array([r["person"] for r in sample])
    sure = np.array([r["sure"] for r in sample])
    every = np.ones(len(sample), bool)

    rows = [{"who": "second labeller (by eye, blind)", "answers_on": "SMILEs' crops",
             "vs_smiles_all": agreement(person, truth, every),
             "vs_smiles_sure": agreement(person, truth, sure)}]
    detector = None
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        direct, through, detector = model_answers(spec, images)
        for where, answers in (("SMILEs' crops", direct), ("through the detector", through)):
            rows.append({"who": spec, "answers_on": where,
                         "vs_smiles_all": agreement(answers, truth, every),
                         "vs_smiles_sure": agreement(answers, truth, sure),
                         "vs_person_all": agreement(answers, person, every),
                         "vs_person_sure": agreement(answers, person, sure)})

    print(f"{len(sample)} SMILEs held-out photos ({int(truth.sum())} labelled smile by SMILEs, "
          f"{int(person.sum())} by the second labeller, who was sure of {int(sure.sum())})")
    head = (f"{'who':<32} {'answers on':<21} {'=SMILEs':>8} {'=SMILEs sure':>13} "
            f"{'=person':>8} {'=person sure':>13}")
    print(head)
    print("-" * len(head))

    def cell(r: dict, key: str, width: int) -> str:
        a = r.get(key)
        return f"{a['agree']:>{width}.3f}" if a and a["agree"] is not None else f"{'-':>{width}}"

    for r in rows:
        print(f"{r['who']:<32} {r['answers_on']:<21} {cell(r, 'vs_smiles_all', 8)} "
              f"{cell(r, 'vs_smiles_sure', 13)} {cell(r, 'vs_person_all', 8)} "
              f"{cell(r, 'vs_person_sure', 13)}")
    write_results(args.out, "smiles_agreement",
                  f"python benchmarks/smiles_agreement.py --models {args.models}",
                  labels_file=str(LABELS.relative_to(ROOT)), photos=len(sample),
                  smile_by_smiles=int(truth.sum()), smile_by_person=int(person.sum()),
                  person_sure=int(sure.sum()), detector=detector, results=rows)


if __name__ == "__main__":
    main()
