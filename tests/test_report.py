"""The evaluation report: files, sections, metrics; and the CLI end to end on a slice."""

import json
import subprocess
import sys

from digitrec.cli import main


def test_evaluate_writes_every_report_file_and_section(tiny_run, tmp_path):
    assert main(["evaluate", str(tiny_run / "best.pt"), "--out", str(tmp_path), "--limit", "2000"]) == 0
    for name in ("metrics.json", "classification_report.txt", "confusion_matrix.png", "curves.png",
                 "misclassified.png", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.9 <= m["test_accuracy"] <= 1.0 and m["n_test"] == 2000
    assert sum(map(sum, m["confusion_matrix"])) == 2000
    assert set(m["classification_report"]) >= {"0", "9", "macro avg", "weighted avg"}
    page = (tmp_path / "report.html").read_text()
    for section in ("Summary", "Classification report", "Confusion matrix", "Accuracy and loss curves",
                    "Misclassified samples", "Training history", "Configuration"):
        assert f"<h2>{section}</h2>" in page, section
    assert page.count("data:image/png;base64,") == 3 and "src=\"http" not in page  # self-contained


def test_evaluate_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a readable digitrec checkpoint (not a whole file written by torch.save" in err
    assert err.count("\n") == 1  # one line, not torch's page about weights_only
    assert main(["evaluate", str(tmp_path / "missing.pt")]) == 2
    assert main(["evaluate", str(tmp_path / "missing.onnx")]) == 2
    assert "model not found" in capsys.readouterr().err


def test_evaluate_an_exported_model_scores_it_on_onnx_runtime(tiny_run, tiny_onnx, tmp_path):
    """The shipped .onnx is scored like its checkpoint: same answers, parameters, epoch, report."""
    from digitrec.evaluation import evaluate_checkpoint

    pt, onnx = evaluate_checkpoint(tiny_run / "best.pt", limit=1000), evaluate_checkpoint(tiny_onnx, limit=1000)
    assert abs(onnx.probs - pt.probs).max() <= 1e-4
    assert (onnx.preds == pt.preds).all()
    for key in ("model", "parameters", "epochs", "errors", "dataset"):
        assert onnx.metrics[key] == pt.metrics[key], key
    assert onnx.metrics["parameters"] == 225_034
    assert main(["evaluate", str(tiny_onnx), "--out", str(tmp_path), "--limit", "300"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_test"] == 300 and m["model"] == "paper_cnn" and m["checkpoint"] == str(tiny_onnx)
    assert "<h2>Configuration</h2>" in (tmp_path / "report.html").read_text()


def test_cli_train_end_to_end_on_a_slice(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "digitrec", "train", "--limit", "10000", "--epochs", "1",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.92, m["test_accuracy"]  # tinygrad-style gate: 1 epoch on 8,000 images
    assert (out / "report.html").exists() and (out / "history.csv").exists()


def test_report_says_what_was_measured_on_what(tiny_run, tmp_path, monkeypatch):
    """The paper's 98.4% only beside MNIST figures; the calibration stated; an ensemble's members'
    own epochs; with --val-split 0 no epoch 'chosen on validation', and no temperature fitted on test;
    a recall of 1.0 off the diagonal written 1.000, not .000."""
    import numpy as np
    from matplotlib.axes import Axes

    from digitrec import checkpoint, report
    from digitrec.config import TrainConfig
    from digitrec.train import fit

    assert main(["evaluate", str(tiny_run / "best.pt"), "--dataset", "usps", "--out", str(tmp_path / "u"),
                 "--limit", "300"]) == 0
    page = (tmp_path / "u" / "report.html").read_text()
    assert "paper reports" not in page and "The run's training, on <code>mnist</code>" in page
    cal = checkpoint.load(tiny_run / "best.pt")["calibration"]
    assert f"Calibration: temperature {cal['temperature']:.3f}, fitted on {cal['fitted_on']:,} validation" in page
    assert main(["ensemble", str(tiny_run / "best.pt"), str(tiny_run / "last.pt"), "--limit", "300",
                 "--out", str(tmp_path / "e")]) == 0
    epochs = [checkpoint.load(tiny_run / n)["epoch"] for n in ("best.pt", "last.pt")]
    assert f"2 checkpoints (epochs {epochs[0]}, {epochs[1]})" in (tmp_path / "e" / "report.html").read_text()

    best = fit(TrainConfig(limit=600, epochs=2, val_split=0), tmp_path / "v0", log=lambda *_: None)
    assert checkpoint.load(best)["calibration"] == {"temperature": 1.0}  # nothing fitted on the test set
    assert main(["evaluate", str(best), "--out", str(tmp_path / "v0r")]) == 0
    page = (tmp_path / "v0r" / "report.html").read_text()
    assert "(the last: with --val-split 0 no epoch is chosen)" in page and "chosen on validation" not in page
    assert "Calibration: none (temperature 1)." in page
    assert "Trained on 600 images of <code>mnist</code>, validated on the test set (--val-split 0)." in page
    sizes = checkpoint.load(tiny_run / "best.pt")["sizes"]
    assert (f"Trained on {sizes['train']:,} images of <code>mnist</code>, {sizes['validation']:,} held out"
            in (tmp_path / "u" / "report.html").read_text())

    texts = []
    monkeypatch.setattr(Axes, "text", lambda self, x, y, s, **k: texts.append(s))
    cm = np.eye(10, dtype=int) * 5
    cm[0] = [0, 5] + [0] * 8  # every 0 read as a 1
    report.plot_confusion(cm, tmp_path / "cm.png")
    assert "1.000" in texts and ".000" not in texts


def test_report_says_when_a_temperature_was_refused(tmp_path):
    import numpy as np

    from digitrec import report

    cal = {"temperature": 1.0, "ece_before": 0.3693, "ece_after": 0.3693, "fitted_on": 16, "refused": 1.65}
    metrics = {"test_accuracy": 0.5, "dataset": "mnist", "epochs": 1, "calibration": cal, "errors": 1, "n_test": 2,
               "model": "paper_cnn", "parameters": 1, "checkpoint": "best.pt",
               "confusion_matrix": np.eye(10, dtype=int).tolist()}
    probs = np.full((2, 10), 0.1)
    page = report.write(tmp_path, metrics, np.zeros((2, 28, 28), np.uint8), np.array([0, 1]), probs, [], {},
                        "").read_text()
    assert ("Calibration: none (temperature 1): the temperature fitted on 16 validation images, 1.650, "
            "would have raised the ECE there (0.3693).") in page


def test_curves_have_one_tick_per_epoch(tmp_path, monkeypatch):
    """A one-epoch run (the fast recipe) is drawn at epoch 1, not on a 0.96 ... 1.04 axis."""
    from matplotlib.figure import Figure

    from digitrec import report

    ticks = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: ticks.extend(
        list(ax.get_xticks()) for ax in self.axes))
    row = {"train_acc": 0.9, "val_acc": 0.9, "train_loss": 0.3, "val_loss": 0.3}
    report.plot_curves([{"epoch": 1, **row}], tmp_path / "c.png")
    report.plot_curves([{"epoch": e, **row} for e in (1, 2, 3)], tmp_path / "c.png")
    assert ticks == [[1], [1], [1, 2, 3], [1, 2, 3]]


def test_misclassified_titles_read_as_the_papers(tmp_path, monkeypatch):
    import numpy as np
    from matplotlib.axes import Axes

    from digitrec import report

    titles = []
    monkeypatch.setattr(Axes, "set_title", lambda self, s, **k: titles.append(s))
    probs = np.full((2, 10), 0.05)
    probs[0, 9], probs[1, 1] = 0.55, 0.55
    assert report.plot_misclassified(np.zeros((2, 28, 28)), np.array([4, 1]), probs, tmp_path / "m.png") == 1
    assert titles == ["True: 4, Pred: 9\n55.0%"]
