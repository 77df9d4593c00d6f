import base64
import csv
import io
import json
from html.parser import HTMLParser

from eval_fakes import BrightnessClassifier
from PIL import Image

from mien.data.datasets import open_dataset
from mien.evaluation.evaluate import evaluate
from mien.evaluation.report import write_report

VOID = {"meta", "img", "br", "hr", "input", "link"}


class Checker(HTMLParser):
    """Collects <img> sources and fails on any unbalanced tag."""

    def __init__(self):
        super().__init__()
        self.stack, self.images, self.errors, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    checker = Checker()
    checker.feed(path.read_text(encoding="utf-8"))
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    return checker


def _decode(img):
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix)
    raw = base64.b64decode(img["src"][len(prefix):])
    with Image.open(io.BytesIO(raw)) as im:
        im.load()
        assert im.format == "PNG" and im.width > 100 and im.height > 100
    return raw


def test_report_is_valid_html_with_embedded_pngs(folder, tmp_path):
    result = evaluate(BrightnessClassifier(), open_dataset(folder)["all"], model_name="m<1>")
    path = write_report(result, tmp_path / "rep")
    page = _parse(path)
    assert len(page.images) == 5
    blobs = {img["alt"]: _decode(img) for img in page.images}
    for name, alt in [("confusion.png", "confusion matrix, counts"),
                      ("confusion_normalized.png", "confusion matrix, row-normalised"),
                      ("class_counts.png", "actual vs predicted"),
                      ("reliability.png", "reliability diagram"),
                      ("mistakes.png", "most confident mistakes")]:
        assert (path.parent / name).read_bytes() == blobs[alt]
    text = " ".join(page.text)
    assert "m<1>" in text  # escaped in the file, restored by the parser
    assert "99-broken.png" in text  # the unreadable file is listed
    assert "Most confident mistakes (2)" in text
    assert "Calibration" in text and f"{result.ece:.4f}" in text
    assert "http" not in path.read_text().replace("http-equiv", "")  # nothing external
    with open(path.parent / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10
    wrong = [r for r in rows if r["true"] != r["predicted"]]
    assert sorted(r["source"].rsplit("/", 2)[-2] for r in wrong) == ["dark", "mid"]


def test_report_of_run_folder_has_curves_and_config(folder, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: fer-a\nlr: 0.001\n")
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e,
                "train_accuracy": 0.5 + e / 10, "val_accuracy": 0.45 + e / 10} for e in (1, 2, 3)]
    (run / "metrics.json").write_text(json.dumps({"best_val_accuracy": 0.75, "history": history}))
    result = evaluate(BrightnessClassifier(), open_dataset(folder)["all"])
    path = write_report(result, tmp_path / "rep", run_dir=run)
    page = _parse(path)
    assert len(page.images) == 6
    assert (path.parent / "curves.png").read_bytes() == _decode(
        next(i for i in page.images if i["alt"] == "training curves"))
    text = " ".join(page.text)
    assert "lr: 0.001" in text and "best_val_accuracy" in text
