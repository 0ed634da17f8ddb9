"""The evaluation report: PNG figures and one self-contained HTML page.

It draws what it is given (labels, probabilities, history, config) and writes
files; it knows nothing about models or training.
Files written into the report folder:
  metrics.json, classification_report.txt, confusion_matrix.png, curves.png,
  misclassified.png, report.html (images embedded as data URIs, readable offline)
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PAPER_ACCURACY = 0.984  # the paper's reported test accuracy (section 4)


def plot_confusion(cm: np.ndarray, path: Path) -> None:
    """Counts and row-normalized (recall) confusion matrices side by side."""
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    for ax, mat, title, fmt in ((axes[0], cm, "Confusion matrix (counts)", "d"),
                                (axes[1], norm, "Row-normalized (recall)", ".3f")):
        shown = np.log1p(mat) if fmt == "d" else mat
        ax.imshow(shown, cmap="Blues")
        for i in range(10):
            for j in range(10):
                v = mat[i, j]
                if v:
                    text = format(v, fmt) if fmt == "d" else (f"{v:.3f}" if i == j else f"{v:.3f}".removeprefix("0"))
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] > shown.max() * 0.6 else "black")
        ax.set(xticks=range(10), yticks=range(10), xlabel="Predicted", ylabel="True", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path, val_label: str = "Val", paper: bool = True) -> None:
    """Training vs validation accuracy and loss per epoch (the paper's two plots; `paper`: its
    98.4% as a line, for runs on MNIST)."""
    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    a1.plot(epochs, [h["train_acc"] for h in history], "o-", label="Train Acc")
    a1.plot(epochs, [h["val_acc"] for h in history], "o-", label=f"{val_label} Acc")
    if paper:
        a1.axhline(PAPER_ACCURACY, color="gray", ls="--", lw=1, label="paper 98.4%")
    a1.set(title="Model Accuracy", xlabel="Epoch", ylabel="Accuracy")
    a2.plot(epochs, [h["train_loss"] for h in history], "o-", label="Train Loss")
    a2.plot(epochs, [h["val_loss"] for h in history], "o-", label=f"{val_label} Loss")
    a2.set(title="Model Loss", xlabel="Epoch", ylabel="Loss")
    for a in (a1, a2):
        a.legend()
        a.grid(alpha=0.3)
        if len(epochs) <= 15:
            a.set_xticks(epochs)  # one tick per epoch (a lone epoch too: no 0.96 ... 1.04)
        else:
            a.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(images, labels, probs, path: Path, max_items: int = 40) -> int:
    """Gallery of wrong predictions, most confident first. Returns how many are shown."""
    preds = probs.argmax(1)
    wrong = np.nonzero(preds != labels)[0]
    wrong = wrong[np.argsort(-probs[wrong, preds[wrong]], kind="stable")][:max_items]
    cols = 8
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.0 + 0.6), squeeze=False,
                             layout="constrained")  # each title clear of the row above, however many rows
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"True: {labels[i]}, Pred: {preds[i]}\n{probs[i, preds[i]]:.1%}", fontsize=8)  # the paper's titles
    if not len(wrong):
        axes[0, 0].text(0, 0.5, "no misclassified samples", fontsize=12)
    fig.suptitle("Misclassified test digits, most confident first")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(wrong)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{path.stem}" src="data:image/png;base64,{data}">'


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    body = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, body: str) -> str:
    """A self-contained HTML page (inline style, no external resources)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
img {{ max-width: 100%; }} pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
.big {{ font-size: 1.3em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def write(out: Path, metrics: dict, images, labels, probs, history: list[dict], config: dict,
          class_report: str, title: str = "digitrec evaluation report") -> Path:
    """Write every report file into `out`; return the path of report.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "classification_report.txt").write_text(class_report)
    plot_confusion(np.array(metrics["confusion_matrix"]), out / "confusion_matrix.png")
    shown = plot_misclassified(images, labels, probs, out / "misclassified.png")
    sections = []
    acc, dataset = metrics["test_accuracy"], metrics["dataset"]
    trained_on = config.get("train_on") or config.get("dataset") or "mnist"
    paper = ("; the paper reports 98.4%, so this " + ("meets" if acc >= PAPER_ACCURACY else "is below") + " it"
             if dataset == "mnist" else "")  # the paper's figure is an MNIST one
    if isinstance(metrics["epochs"], list):  # an ensemble: each member's own epoch
        which = f"{len(metrics['epochs'])} checkpoints (epochs {', '.join(map(str, metrics['epochs']))})"
    elif history and not config.get("val_split", 1):
        which = f"checkpoint of epoch {metrics['epochs']} of {len(history)} (the last: with --val-split 0 no epoch is chosen)"
    else:
        which = f"checkpoint of epoch {metrics['epochs']}" + (f" of {len(history)} (chosen on validation accuracy)"
                                                             if history else "")
    notes = []
    sizes = metrics.get("trained_sizes")
    if sizes:
        notes.append(f"Trained on {sizes['train']:,} images of <code>{html.escape(trained_on)}</code>"
                     + (f", {sizes['validation']:,} held out to validate" if sizes["validation"] else
                        ", validated on the test set (--val-split 0)") + ".")
    cal = metrics.get("calibration") or {}
    if "refused" in cal:
        notes.append(f"Calibration: none (temperature 1): the temperature fitted on {cal['fitted_on']:,} validation "
                     f"images, {cal['refused']:.3f}, would have raised the ECE there ({cal['ece_before']:.4f}).")
    elif "ece_before" in cal:
        notes.append(f"Calibration: temperature {cal['temperature']:.3f}, fitted on {cal['fitted_on']:,} validation "
                     f"images (ECE there {cal['ece_before']:.4f} before, {cal['ece_after']:.4f} after).")
    elif cal:
        notes.append("Calibration: none (temperature 1).")
    if metrics.get("finetuned_on"):
        tuned = html.escape(str(metrics["finetuned_on"]))
        notes.append(f"Fine-tuned on <code>{tuned}</code>; the curves and history below are those of the run it "
                     "started from." + (f" The model was tuned on examples of <code>{tuned}</code>: its test images "
                                        "may include some of them." if metrics["finetuned_on"] == dataset else ""))
    sections.append(
        f"<h2>Summary</h2><p class=big>Test accuracy <b>{acc:.2%}</b> "
        f"({metrics['errors']} errors in {metrics['n_test']:,}) on <code>{html.escape(dataset)}</code>{paper}.</p>"
        f"<p>Model <code>{html.escape(metrics['model'])}</code>, {metrics['parameters']:,} parameters, "
        f"{which}: <code>{html.escape(metrics['checkpoint'])}</code>.</p>"
        + "".join(f"<p>{n}</p>" for n in notes)
    )
    sections.append(f"<h2>Classification report</h2><pre>{html.escape(class_report)}</pre>")
    sections.append(f"<h2>Confusion matrix</h2>{_img(out / 'confusion_matrix.png')}")
    if history:
        val_label = "Val" if config.get("val_split", 1) else "Test"
        plot_curves(history, out / "curves.png", val_label, paper=trained_on == "mnist")
        on = (f"<p>The run's training, on <code>{html.escape(trained_on)}</code> (not the test set above).</p>"
              if trained_on != dataset else "")
        sections.append(f"<h2>Accuracy and loss curves</h2>{on}{_img(out / 'curves.png')}")
    sections.append(f"<h2>Misclassified samples</h2><p>{metrics['errors']} misclassified; "
                    f"the {shown} most confident shown.</p>{_img(out / 'misclassified.png')}")
    sections.append(f"<h2>Training history</h2>{_table(history)}")
    sections.append(f"<h2>Configuration</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    path = out / "report.html"
    path.write_text(_page(title, "".join(sections)))
    return path


def plot_cross_eval(acc: np.ndarray, rows: list[str], cols: list[str], path: Path) -> None:
    """Heat map of accuracy: rows = what each model was trained on, columns = test sets."""
    acc = np.asarray(acc, dtype=float)
    fig, ax = plt.subplots(figsize=(2.2 + 1.5 * len(cols), 1.4 + 0.55 * len(rows)))
    im = ax.imshow(acc, cmap="RdYlGn", vmin=max(0.0, min(0.9, float(acc.min()))), vmax=1.0, aspect="auto")
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.2%}", ha="center", va="center", fontsize=10)
    ax.set(xticks=range(len(cols)), yticks=range(len(rows)), xlabel="Test set", ylabel="Trained on",
           title="Cross-dataset accuracy")
    ax.set_xticklabels(cols)
    ax.set_yticklabels(rows, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_cross_eval(out: Path, result: dict, rows: list[str], title: str = "digitrec cross-dataset evaluation") -> Path:
    """crosseval.png and crosseval.html (a crosseval.result dict: datasets, n_test, models); returns the HTML path."""
    out = Path(out)
    cols = result["datasets"]
    acc = np.array([[m["accuracy"][c] for c in cols] for m in result["models"]])
    plot_cross_eval(acc, rows, cols, out / "crosseval.png")
    table = [{"trained on · model": r, **{c: m["accuracy"][c] for c in cols}, "checkpoint": m["checkpoint"]}
             for r, m in zip(rows, result["models"])]
    sizes = ", ".join(f"{html.escape(c)} {n:,}" for c, n in result["n_test"].items())
    body = f"""<p>Accuracy of each model (rows: what it was trained on) on each test set (columns; images: {sizes}).
Every test set is brought to MNIST form by the same normalization as <code>predict</code>.</p>
{_img(out / 'crosseval.png')}
<h2>Accuracy</h2>{_table(table)}
<h2>Data</h2><pre>{html.escape(json.dumps(result, indent=2))}</pre>"""
    path = out / "crosseval.html"
    path.write_text(_page(title, body))
    return path
