"""A run killed at any moment can be resumed, and ends as the run that was never killed;
a run killed before it saved an epoch can also be started over in its own folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mien.training import checkpoint as ckpt
from mien.training import optim

from .conftest import FAST, run_cli


class Killed(BaseException):
    """kill -9: nothing after it runs, no handler sees it."""


def kill_in_epoch_1(monkeypatch):
    original = optim.lr_factor

    def factor(step, *rest):
        if step == 1:
            raise Killed
        return original(step, *rest)

    monkeypatch.setattr(optim, "lr_factor", factor)


def kill_writing(name: str, epoch: int):
    """Kill while `name` of `epoch` is being written, leaving its temporary file half done."""

    def arm(monkeypatch):
        original = os.replace
        seen = {"calls": 0}

        def replace(src, dst):
            if Path(dst).name == name:
                seen["calls"] += 1
                if seen["calls"] == epoch:
                    Path(src).write_bytes(Path(src).read_bytes()[:100])
                    raise Killed
            return original(src, dst)

        monkeypatch.setattr(os, "replace", replace)

    return arm


FROM_SCRATCH = "no epoch was saved before the run stopped; starting it from epoch 1"
AFTER_EPOCH_1 = "after epoch 1"
KILLS = {  # where the run dies -> (how, what --resume says)
    "in epoch 1, before anything was saved": (kill_in_epoch_1, FROM_SCRATCH),
    "writing the state of epoch 1": (kill_writing(ckpt.STATE_FILE, 1), FROM_SCRATCH),
    "writing last.safetensors of epoch 1": (kill_writing(ckpt.LAST_FILE, 1), AFTER_EPOCH_1),
    "writing the best weights of epoch 1": (kill_writing(ckpt.MODEL_FILE, 1), AFTER_EPOCH_1),
    "writing the state of epoch 2": (kill_writing(ckpt.STATE_FILE, 2), AFTER_EPOCH_1),
}


def killed_run(stripes, out, kill, monkeypatch) -> None:
    with monkeypatch.context() as m:
        kill(m)
        with pytest.raises(Killed):
            run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out)


def assert_same_run(out: Path, reference: Path) -> None:
    """Same epochs, losses, scores and weights as the run that was never killed (CPU training
    replays each epoch exactly)."""
    got, want = (json.loads((r / "metrics.json").read_text()) for r in (out, reference))
    assert got["stopped"] == "completed" and got["best_epoch"] == want["best_epoch"]
    for key in ("epoch", "train_loss", "val_loss", "val_accuracy"):
        assert [h[key] for h in got["history"]] == pytest.approx(
            [h[key] for h in want["history"]], abs=1e-6), key
    for name in (ckpt.MODEL_FILE, ckpt.LAST_FILE):
        weights, record = ckpt.load_weights(out / name)
        expected, expected_record = ckpt.load_weights(reference / name)
        assert record["epoch"] == expected_record["epoch"], name
        for k in expected:
            np.testing.assert_allclose(weights[k].numpy(), expected[k].numpy(), atol=1e-5,
                                       err_msg=f"{name} {k}")


@pytest.mark.parametrize("kill", list(KILLS))
def test_a_killed_run_resumes_to_the_run_never_killed(kill, base_run, stripes, tmp_path,
                                                      monkeypatch):
    out = tmp_path / "run"
    arm, said = KILLS[kill]
    killed_run(stripes, out, arm, monkeypatch)
    result = run_cli("train", "--resume", out, "--quiet")
    assert said in result.output
    assert_same_run(out, base_run)


def test_a_run_killed_before_its_first_save_can_be_started_over(base_run, stripes, tmp_path,
                                                                monkeypatch):
    out = tmp_path / "run"
    killed_run(stripes, out, kill_in_epoch_1, monkeypatch)
    assert (out / "config.yaml").is_file() and not (out / ckpt.STATE_FILE).exists()
    result = run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out)
    assert "stopped before saving an epoch; starting over" in result.output
    assert_same_run(out, base_run)
    # Now it holds a finished run, which a new one must not overwrite.
    again = run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out, ok=False)
    assert again.exit_code != 0 and "already holds a run" in str(again.exception)


def test_a_run_that_saved_an_epoch_is_not_taken_over(stripes, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_run(stripes, out, kill_writing(ckpt.STATE_FILE, 2), monkeypatch)
    again = run_cli("train", stripes, *FAST, "--epochs", "2", "--out", out, ok=False)
    assert again.exit_code != 0 and "--resume it" in str(again.exception)


def test_resume_of_a_folder_without_a_run_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("train", "--resume", tmp_path / "empty", ok=False)
    assert result.exit_code != 0
    assert "nothing to resume" in str(result.exception) and "without --resume" in str(
        result.exception)


def _drop_weights_from_state(run: Path) -> None:
    """The state file as mien wrote it before the weights moved into it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = run / ckpt.STATE_FILE
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("module.")}
    save_file(tensors, str(path), metadata=meta)


def test_resume_reads_runs_saved_with_weights_beside_the_state(base_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(base_run, old)
    _drop_weights_from_state(old)
    run_cli("train", "--resume", old, "--epochs", "3", "--quiet")
    m = json.loads((old / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3] and m["stopped"] == "completed"

    torn = tmp_path / "torn"  # killed between writing last.safetensors and the state file
    shutil.copytree(base_run, torn)
    _drop_weights_from_state(torn)
    weights, record = ckpt.load_weights(torn / ckpt.LAST_FILE)
    ckpt.save_weights(torn / ckpt.LAST_FILE, weights, {**record, "epoch": 3})
    result = run_cli("train", "--resume", torn, "--epochs", "3", "--quiet", ok=False)
    assert "epoch 3, but" in str(result.exception) and "another --out" in str(result.exception)


def test_repeats_resume_a_seed_killed_before_its_first_save(stripes, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    with monkeypatch.context() as m:
        kill_in_epoch_1(m)  # seed 0 dies in its first epoch
        with pytest.raises(Killed):
            run_cli("train", stripes, *FAST, "--epochs", "1", "--repeats", "2", "--out", out)
    result = run_cli("train", "--resume", out, "--quiet")
    assert "seed-0: no epoch was saved" in result.output
    rep = json.loads((out / "repeats.json").read_text())
    assert rep["seeds"] == [0, 1] and len(rep["values"]) == 2
