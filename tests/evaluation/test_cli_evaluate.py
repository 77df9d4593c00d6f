import json

import pytest
from typer.testing import CliRunner

from mien.cli.main import app, main
from mien.errors import DatasetError

runner = CliRunner()


def test_evaluate_prints_table_and_writes_json(folder, fake_loader, tmp_path):
    out = tmp_path / "out" / "m.json"
    result = runner.invoke(app, ["evaluate", "bright-model", str(folder), "--batch-size", "3",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.8000" in result.output
    record = json.loads(out.read_text())
    assert f"ECE {record['ece']:.4f}" in result.output
    for label in ("dark", "mid", "bright"):
        assert label in result.output
    assert fake_loader["bright-model"].batches == [3, 3, 3, 1]
    record = json.loads(out.read_text())
    assert record["model"] == "bright-model"
    assert record["data"] == str(folder)
    assert record["split"] == "all"
    assert record["confusion"] == [[2, 1, 0], [0, 2, 1], [0, 0, 4]]
    assert len(record["unreadable"]) == 1


def test_evaluate_label_options_and_split(tmp_path, fake_loader):
    from eval_fakes import make_folder

    for split in ("train", "val"):
        make_folder(tmp_path / "t" / split, {"black": [20], "mid": [128], "x": [1]})
    args = ["evaluate", "m", str(tmp_path / "t"), "--json", str(tmp_path / "r.json")]
    bad = runner.invoke(app, args)
    assert isinstance(bad.exception, DatasetError)
    ok = runner.invoke(app, args + ["--label-map", "black=dark", "--ignore", "x",
                                    "--split", "train", "--tta", "flip"])
    assert ok.exit_code == 0, ok.output
    record = json.loads((tmp_path / "r.json").read_text())
    assert (record["split"], record["tta"], record["n"]) == ("train", "flip", 2)
    assert record["per_class"]["bright"]["recall"] is None


def test_bad_input_exits_nonzero_with_one_line(tmp_path, fake_loader, capsys):
    from eval_fakes import make_folder

    make_folder(tmp_path / "d", {"contempt": [10]})
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "m", str(tmp_path / "d")])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: dataset class 'contempt'") and "--ignore contempt" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_evaluate_report_option_for_a_run_folder(folder, fake_loader, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: fer-a\n")
    (run / "metrics.json").write_text('{"train_seconds": 12.5, "history": []}')
    result = runner.invoke(app, ["evaluate", str(run), str(folder), "--json",
                                 str(tmp_path / "e.json"), "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Training run" in page and "model: fer-a" in page
    assert (tmp_path / "r" / "mistakes.png").stat().st_size > 1000
    assert json.loads((tmp_path / "e.json").read_text())["train_seconds"] == 12.5


def test_a_run_folder_is_scored_on_the_images_it_held_out(folder, fake_loader, tmp_path):
    from mien.data.datasets import open_dataset, stratified_split

    _, val, record = stratified_split(open_dataset(folder)["all"], 0.4, seed=3)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"model: fer-a\ndata: {folder}\n")
    (run / "split.json").write_text(json.dumps(record))  # not what val 0.1, seed 0 would give
    scores = {}
    for split in (None, "val", "all"):
        out = tmp_path / f"{split}.json"
        args = ["evaluate", str(run), str(folder), "--json", str(out)]
        result = runner.invoke(app, args + (["--split", split] if split else []))
        assert result.exit_code == 0, result.output
        scores[split] = json.loads(out.read_text())
        trained_on = f"warning: {run} was trained on these images" in result.output
        assert trained_on == (split == "all")
    timing = ("seconds", "images_per_second")
    assert {k: v for k, v in scores[None].items() if k not in timing} == {
        k: v for k, v in scores["val"].items() if k not in timing}
    assert scores["val"]["split"] == "val"
    assert scores["val"]["data"] == f"{folder}, split by {run}"
    assert scores["val"]["n"] + len(scores["val"]["unreadable"]) == len(val) < 11
    assert scores["all"]["n"] == 10

    table = tmp_path / "t.md"
    compared = runner.invoke(app, ["compare", str(tmp_path / "val.json"),
                                   str(tmp_path / "all.json"), "--markdown", str(table)])
    assert compared.exit_code == 0, compared.output
    rows = table.read_text().splitlines()[2:]
    assert f"| {folder}, split by {run} [val], {scores['val']['n']} images |" in rows[0]
    assert f"| {folder} [all], 10 images |" in rows[1]


def test_evaluate_celeba_attribute(tmp_path, fake_loader):
    from eval_fakes import write_gray

    root = tmp_path / "celeba"
    rows = [("000001.jpg", 1, 30), ("000002.jpg", -1, 230), ("000003.jpg", 1, 220)]
    for name, _, level in rows:
        write_gray(root / "img_align_celeba" / name, level)
    (root / "list_attr_celeba.txt").write_text(
        "3\nSmiling Eyeglasses\n" + "".join(f"{n} 1 {v}\n" for n, v, _ in rows))
    res = runner.invoke(app, ["evaluate", "m", str(root), "--attribute", "Eyeglasses",
                              "--label-map", "eyeglasses=dark,no_eyeglasses=bright",
                              "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "e.json").read_text())
    # glasses at level 220 reads bright: rows true dark, mid, bright
    assert record["confusion"] == [[1, 0, 1], [0, 0, 0], [0, 0, 1]]
