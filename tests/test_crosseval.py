"""Cross-dataset evaluation on a slice: the matrix agrees with `evaluate`, and its files are written."""

import json
import os
import shutil

import pytest

from digitrec import crosseval
from digitrec.cli import main
from digitrec.evaluation import evaluate_checkpoint


def test_cross_eval_on_a_slice(tiny_run, tmp_path):
    ckpt = tiny_run / "best.pt"
    twin = tmp_path / "twin.pt"
    shutil.copy(ckpt, twin)
    result = crosseval.cross_evaluate([ckpt, twin], ["mnist", "optdigits"], limit=300, log=lambda *_: None)
    assert result["datasets"] == ["mnist", "optdigits"] and result["n_test"] == {"mnist": 300, "optdigits": 300}
    row = result["models"][0]
    assert row["trained_on"] == "mnist" and row["model"] == "paper_cnn"
    for name in ("mnist", "optdigits"):
        ev = evaluate_checkpoint(ckpt, name, limit=300)
        assert abs(row["accuracy"][name] - ev.metrics["test_accuracy"]) < 1e-9
        assert row["errors"][name] == ev.metrics["errors"]
    assert row["accuracy"]["mnist"] > 0.9 and row["accuracy"]["optdigits"] > 0.6
    # two rows with the same label are told apart by their path
    labels = crosseval.row_labels(result)
    assert len(set(labels)) == 2 and str(ckpt) in labels[0] and str(twin) in labels[1]
    assert result["models"][1]["accuracy"] == row["accuracy"]


def test_cross_eval_command_writes_json_png_html(tiny_run, tmp_path, capsys):
    out = tmp_path / "ce"
    assert main(["cross-eval", str(tiny_run / "best.pt"), "--datasets", "mnist", "--limit", "200",
                 "--out", str(out)]) == 0
    data = json.loads((out / "crosseval.json").read_text())
    assert data["models"][0]["accuracy"]["mnist"] > 0.9
    assert (out / "crosseval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "crosseval.html").read_text()
    assert "data:image/png;base64," in page and "mnist" in page


def test_cross_eval_unknown_dataset_is_a_clear_error(tiny_run, tmp_path, capsys):
    assert main(["cross-eval", str(tiny_run / "best.pt"), "--datasets", "kmnist", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'kmnist'" in capsys.readouterr().err


def test_a_model_trained_on_a_pool_is_scored_on_its_held_out_fifth_only(tiny_run, mnist_test, tmp_path):
    """A folder or CSV has no test part: training holds out a seeded fifth, and evaluate and
    cross-eval score the model on that fifth, never on the images it trained on."""
    import numpy as np
    import torch

    from digitrec import datasets
    from digitrec.recipes import resolve
    from digitrec.train import fit

    x, y = mnist_test
    path = tmp_path / "mine.csv"
    rows = [",".join(["label"] + [f"pixel{i}" for i in range(784)])]
    rows += [",".join(map(str, [int(lab), *img.ravel()])) for img, lab in zip(x[:500], y[:500])]
    path.write_text("\n".join(rows) + "\n")
    best = fit(resolve("fast", dataset=str(path), val_split=50, seed=3), tmp_path / "run", log=lambda *_: None)
    held_out = datasets.prepare(str(path), val_split=50, seed=3)["test"]
    assert len(held_out) == 100
    ev = evaluate_checkpoint(best)
    assert ev.metrics["n_test"] == 100 and np.array_equal(ev.images, held_out.images.numpy())
    result = crosseval.cross_evaluate([best, tiny_run / "best.pt"], [str(path)], log=lambda *_: None)
    assert [r["n_test"][str(path)] for r in result["models"]] == [100, 500]  # tiny never trained on it
    assert abs(result["models"][0]["accuracy"][str(path)] - ev.metrics["test_accuracy"]) < 1e-9
    assert not torch.equal(held_out.images, datasets.load(str(path))["test"].images[:100])
    other_spelling = os.path.relpath(path)  # the same file named another way
    assert evaluate_checkpoint(best, other_spelling).metrics["n_test"] == 100
    from digitrec.ensemble import evaluate_ensemble
    from digitrec.errors import DigitrecError

    assert evaluate_ensemble([best, best], str(path)).metrics["n_test"] == 100
    other = fit(resolve("fast", dataset=str(path), val_split=50, seed=4), tmp_path / "run4", log=lambda *_: None)
    with pytest.raises(DigitrecError, match="with different seeds"):
        evaluate_ensemble([best, other], str(path))
