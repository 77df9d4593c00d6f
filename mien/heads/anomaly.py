"""Anomaly detection with the convolutional autoencoder: learn to reconstruct one class, call
anything reconstructed worse than the q-quantile of the training images anomalous.

Scores are in pixel units ([0, 1] intensities): the mean squared error, or the 1-D Wasserstein
distance between the pixel-intensity distributions of image and reconstruction. For two
samples of equal size W1 is the mean absolute difference of the sorted values, so it needs
neither bins nor scipy; it ignores where pixels are, only which intensities occur.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mien.errors import DatasetError, ModelFileError

ANOMALY_TASK = "anomaly"


def mse_scores(images: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """(N, ...) float arrays -> (N,) mean squared error per image."""
    d = np.asarray(images, np.float64) - np.asarray(recon, np.float64)
    return (d.reshape(len(d), -1) ** 2).mean(axis=1)


def wasserstein_scores(images: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """(N, ...) float arrays -> (N,) W1 distance between each image's pixel values and its
    reconstruction's (equal sample sizes: mean |sorted a - sorted b|)."""
    a = np.sort(np.asarray(images, np.float64).reshape(len(images), -1), axis=1)
    b = np.sort(np.asarray(recon, np.float64).reshape(len(recon), -1), axis=1)
    return np.abs(a - b).mean(axis=1)


SCORES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mse": mse_scores,
    "wasserstein": wasserstein_scores,
}


def threshold_at_quantile(scores: np.ndarray, quantile: float) -> float:
    """The score below which `quantile` of the (normal) training images fall."""
    scores = np.asarray(scores, np.float64)
    if scores.size == 0:
        raise ValueError("no scores to take a quantile of")
    return float(np.quantile(scores, quantile))


def anomaly_proba(scores: np.ndarray, threshold: float) -> np.ndarray:
    """P(anomalous) as score / (score + threshold): 0.5 exactly at the threshold, monotone in
    the score, so argmax over (normal, anomalous) is the threshold rule."""
    s = np.maximum(np.asarray(scores, np.float64), 0.0)
    return s / np.maximum(s + threshold, 1e-12)


def _to_pixels(x: np.ndarray, pre) -> np.ndarray:
    """Normalised (N, C, H, W) network space -> [0, 1] intensities."""
    mean = np.asarray(pre.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(1, -1, 1, 1)
    return np.clip(x * std + mean, 0.0, 1.0)


class AnomalyDetector:
    """`Classifier` (docs/design.md) of an anomaly run: labels (normal class, the other),
    probabilities from `anomaly_proba`, plus `scores`, `reconstruct` and report figures."""

    BATCH = 256

    def __init__(self, path: str | os.PathLike, name: str | None = None, device: str = "cpu"):
        from mien.data.preprocess import Framing, Preprocess
        from mien.models.build import build_model
        from mien.runfiles import load_weights

        self.path = Path(path)
        state, self.record = load_weights(self.path)
        info = self.record.get("anomaly")
        if self.record.get("task") != ANOMALY_TASK or not isinstance(info, dict):
            raise ModelFileError(f"{self.path}: not an anomaly detector (no 'anomaly' record); "
                                 "train one with `mien train --anomaly`")
        self.model = build_model(self.record, state, path=self.path).eval().to(device)
        self.device = device
        self.name = name or self.path.stem
        self.labels: tuple[str, ...] = tuple(self.record["labels"])
        self.preprocess = Preprocess.from_dict(self.record["preprocess"])
        self.input_size: tuple[int, int] = self.preprocess.input_size
        self.framing = Framing.from_dict(self.record.get("framing"))
        self.score_name: str = info["score"]
        self.threshold = float(info["threshold"])
        self.normal_index = int(info["normal_index"])
        if self.score_name not in SCORES:
            raise ModelFileError(f"{self.path}: unknown anomaly score {self.score_name!r}; "
                                 "upgrade mien")

    def __repr__(self) -> str:
        return (f"AnomalyDetector({self.name!r}, normal={self.labels[self.normal_index]!r}, "
                f"score={self.score_name}, threshold={self.threshold:.5g})")

    def reconstruct(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """[0, 1] float32 (N, C, H, W) inputs at the model's size and their reconstructions."""
        import torch

        xs, rs = [], []
        with torch.no_grad():
            for s in range(0, len(images), self.BATCH):
                x = self.preprocess(images[s:s + self.BATCH])
                r = self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
                xs.append(_to_pixels(x, self.preprocess))
                rs.append(_to_pixels(r, self.preprocess))
        return np.concatenate(xs), np.concatenate(rs)

    def scores(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if len(images) == 0:
            return np.empty(0)
        out = [SCORES[self.score_name](*self.reconstruct(images[s:s + self.BATCH]))
               for s in range(0, len(images), self.BATCH)]
        return np.concatenate(out)

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        p = anomaly_proba(self.scores(images), self.threshold)
        out = np.zeros((len(p), len(self.labels)), np.float32)
        out[:, self.normal_index] = 1.0 - p
        out[:, 1 - self.normal_index] = p
        return out

    def report_figures(self, result, limit: int = 4000) -> list[tuple[str, str, bytes]]:
        """(file name, title, PNG) for `mien evaluate --report`: score distributions per true
        class with the threshold, and originals above their reconstructions."""
        from mien.heads.plots import reconstructions_png, score_histogram_png

        rows = np.arange(len(result.y_true))
        if len(rows) > limit:
            rows = np.sort(np.random.default_rng(0).choice(rows, limit, replace=False))
        images = [result.image(int(r), self.preprocess.color) for r in rows]
        x, recon = self.reconstruct(images)
        scores = SCORES[self.score_name](x, recon)
        y = result.y_true[rows]
        hist = score_histogram_png(scores, y, self.labels, self.threshold, self.score_name)
        pick = _examples(scores, y, len(self.labels))
        captions = [f"{self.labels[y[i]]}\n{self.score_name} {scores[i]:.4f}" for i in pick]
        grid = reconstructions_png(x[pick], recon[pick], captions)
        n = f" ({len(rows)} of {len(result.y_true)} images)" if len(rows) < len(result.y_true) \
            else ""
        return [("anomaly_scores.png", f"Anomaly scores per true class{n}", hist),
                ("reconstructions.png", "Originals (top) and reconstructions (bottom)", grid)]


def _examples(scores: np.ndarray, y: np.ndarray, k: int, per_class: int = 4) -> list[int]:
    """Per class, images spread from its lowest to its highest score."""
    pick: list[int] = []
    for c in range(k):
        idx = np.flatnonzero(y == c)
        if len(idx):
            order = idx[np.argsort(scores[idx], kind="stable")]
            pick += order[np.linspace(0, len(order) - 1, min(per_class, len(order)))
                          .round().astype(int)].tolist()
    return pick


def anomaly_labels(classes: Sequence[str], normal: str) -> tuple[tuple[str, ...], int]:
    """The detector's labels and the normal one's index: a two-class dataset keeps its own
    names and order; with more classes everything else becomes `not_<normal>`."""
    classes = tuple(classes)
    if normal not in classes:
        raise DatasetError(f"--normal-class {normal!r} is not a class of the data "
                           f"(classes: {', '.join(classes)})")
    if len(classes) == 2:
        return classes, classes.index(normal)
    return (normal, f"not_{normal}"), 0


def train_anomaly(cfg, hcfg, *, echo: Callable[[str], None] = print):
    """Train the autoencoder on `hcfg.normal_class` only, threshold its scores, judge it on
    the whole validation split. Returns the run folder and metrics dict."""
    import torch

    from mien.heads.fit import new_run_dir, save_run_config
    from mien.models import create_model, model_info
    from mien.training import checkpoint as ckpt
    from mien.training.config import ConfigError
    from mien.training.data import decode, load_splits
    from mien.training.fit import preprocess_for, resolve_device

    if not cfg.model:
        raise ConfigError("--anomaly needs --model, e.g. --model smile-autoencoder")
    if model_info(cfg.model).task != "autoencoder":
        raise ConfigError(f"--anomaly needs an autoencoder (e.g. smile-autoencoder); "
                          f"{cfg.model!r} is a {model_info(cfg.model).task}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    pre = preprocess_for(cfg)
    train, val, split = load_splits(cfg)
    labels, normal_index = anomaly_labels(train.classes, hcfg.normal_class)
    if len(val) == 0:
        raise DatasetError(f"{cfg.data}: no validation images; give --val FOLDER or a fraction")
    normal = train.classes.index(hcfg.normal_class)
    run_dir = new_run_dir(cfg, f"{cfg.model}-anomaly")
    cfg = cfg.replace(out=str(run_dir))
    save_run_config(run_dir, cfg, hcfg)
    if split is not None:
        (run_dir / "split.json").write_text(json.dumps(split, indent=1))

    echo(f"decoding images at {pre.input_size[0]}x{pre.input_size[1]} {pre.color} ...")
    tx, _, tskip = decode(train.subset(np.flatnonzero(train.labels == normal)), pre,
                          strict=cfg.strict, workers=cfg.num_workers)
    vx, vy, vskip = decode(val, pre, strict=cfg.strict, workers=cfg.num_workers)
    # label indices of the detector: the dataset's own with two classes, else normal -> 0
    v_true = vy if len(train.classes) == 2 else (vy != normal).astype(np.int64)
    vnormal = vx[vy == normal]
    echo(f"training {cfg.model} on {len(tx)} {hcfg.normal_class!r} images; validation "
         f"{len(vx)} images ({len(vnormal)} normal)")

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, 0, in_channels=pre.channels, input_size=pre.input_size)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def inputs(batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(pre.normalize(batch) if pre.equalize == "none" else pre(batch))

    def loss_on(images: np.ndarray) -> float:
        model.eval()
        total = 0.0
        with torch.no_grad():
            for s in range(0, len(images), 256):
                x = inputs(images[s:s + 256]).to(device)
                total += float(torch.nn.functional.mse_loss(model(x), x)) * len(x)
        return total / max(len(images), 1)

    budget = cfg.max_minutes * 60.0 if cfg.max_minutes else None
    history, best, best_state, stopped = [], float("inf"), None, "completed"
    t_start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(tx))
        total, t0 = 0.0, time.perf_counter()
        for s in range(0, len(order), cfg.batch_size):
            batch = tx[np.sort(order[s:s + cfg.batch_size])]
            if cfg.augment and cfg.flip:  # mirrored faces are as normal as the originals
                flip = rng.random(len(batch)) < 0.5
                batch = batch.copy()
                batch[flip] = batch[flip][:, :, ::-1]
            x = inputs(batch).to(device)
            loss = torch.nn.functional.mse_loss(model(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            if budget and time.perf_counter() - t_start > budget:
                stopped = "time_budget"
                break
        val_loss = loss_on(vnormal) if len(vnormal) else float("nan")
        history.append({"epoch": epoch, "train_loss": total / len(tx), "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        improved = not val_loss >= best  # NaN (no normal val images): keep the last epoch
        if improved:
            best = val_loss
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        echo(f"epoch {epoch}: train mse {total / len(tx):.5f} | val mse (normal) "
             f"{val_loss:.5f}{' *' if improved else ''} ({history[-1]['seconds']:.1f}s)")
        if stopped == "time_budget":
            break
        if cfg.patience and epoch - _best_epoch(history) >= cfg.patience:
            stopped = "early_stopping"
            break
    train_seconds = time.perf_counter() - t_start
    model.load_state_dict(best_state)
    model.cpu().eval()

    record = ckpt.model_record(
        arch=cfg.model, labels=labels, preprocess=pre, in_channels=pre.channels,
        task=ANOMALY_TASK, model_kwargs=getattr(model, "model_kwargs", {}),
        trained_on=str(cfg.data), run=run_dir.name, framing=cfg.framing.to_dict(),
        anomaly={"score": hcfg.score, "quantile": hcfg.quantile, "threshold": 0.0,
                 "normal_class": hcfg.normal_class, "normal_index": normal_index})
    weights = run_dir / ckpt.MODEL_FILE
    ckpt.save_weights(weights, model.state_dict(), record)
    detector = AnomalyDetector(weights, name=run_dir.name)
    train_scores = detector.scores(tx)
    threshold = threshold_at_quantile(train_scores, hcfg.quantile)
    record["anomaly"]["threshold"] = threshold
    detector.threshold = threshold
    val_scores = detector.scores(vx)
    v_pred = np.where(val_scores > threshold, 1 - normal_index, normal_index)
    acc = float((v_pred == v_true).mean())
    record.update(val_accuracy=acc)
    ckpt.save_weights(weights, model.state_dict(), record)

    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (v_true, v_pred), 1)
    recall = {labels[c]: float(cm[c, c] / cm[c].sum()) if cm[c].sum() else None
              for c in range(k)}
    from mien.evaluation.plots import curves_png
    from mien.heads.plots import score_histogram_png
    from mien.training.plots import plot_confusion

    plot_confusion(cm, labels, run_dir / "confusion.png", title=f"validation, {hcfg.score}")
    (run_dir / "curves.png").write_bytes(curves_png(history))
    (run_dir / "scores.png").write_bytes(
        score_histogram_png(val_scores, v_true, labels, threshold, hcfg.score))
    metrics = {
        "model": cfg.model, "task": ANOMALY_TASK, "classes": list(labels),
        "normal_class": hcfg.normal_class, "score": hcfg.score, "quantile": hcfg.quantile,
        "threshold": threshold, "best_val_accuracy": acc, "final_val_accuracy": acc,
        "per_class_recall": recall, "confusion": cm.tolist(),
        "best_epoch": _best_epoch(history), "epochs_run": len(history), "stopped": stopped,
        "train_seconds": round(train_seconds, 3), "num_train": int(len(tx)),
        "num_val": int(len(vx)), "skipped": list(tskip) + list(vskip), "history": history,
        "train_scores": {"min": float(train_scores.min()), "median":
                         float(np.median(train_scores)), "max": float(train_scores.max())},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    echo(f"threshold {threshold:.5g} ({hcfg.quantile:.0%} of training {hcfg.score} scores); "
         f"val accuracy {acc:.4f}; recall " + ", ".join(
             f"{c} {r:.3f}" for c, r in recall.items() if r is not None))
    return run_dir, metrics


def _best_epoch(history: list[dict]) -> int:
    vals = [h["val_loss"] for h in history]
    if all(np.isnan(v) for v in vals):
        return len(history)
    return int(np.nanargmin(vals)) + 1
