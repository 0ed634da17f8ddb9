"""Fine-tuning: a model that never saw Semeion, tuned on a few Semeion digits per class, gets better on
the rest; the result is a checkpoint that predict (the Recognizer) accepts."""

import json
import re

import numpy as np
import pytest
import torch

from digitrec import checkpoint
from digitrec.errors import DataError, DigitrecError
from digitrec.finetune import finetune, split_examples


def test_split_examples_per_class_and_fraction():
    labels = torch.arange(10).repeat(8)
    tune, hold = split_examples(labels, per_class=3, seed=1)
    assert np.bincount(labels[tune], minlength=10).tolist() == [3] * 10
    assert len(hold) == 50 and not set(tune.tolist()) & set(hold.tolist())
    tune, hold = split_examples(labels, holdout=0.25)
    assert len(hold) == 20 and np.bincount(labels[hold], minlength=10).tolist() == [2] * 10
    with pytest.raises(DataError, match="needs more"):
        split_examples(labels, per_class=8)


@pytest.mark.parametrize("setting, message", [
    (dict(epochs=0), "--epochs must be a whole number, at least 1; got 0"), (dict(epochs=1.5), "--epochs must be"),
    (dict(batch_size=0), "--batch-size must be a whole number, at least 1"), (dict(lr=float("inf")), "--lr must be"),
    (dict(lr=0.0), "--lr must be above 0"), (dict(replay=-1.0), "--replay must be 0 or more; got -1.0"),
    (dict(per_class=-2), "--per-class must be 0"), (dict(threads=-1), "--threads must be 0 (all cores) or more"),
])
def test_finetune_refuses_settings_out_of_range(tiny_run, tmp_path, setting, message):
    with pytest.raises(DigitrecError, match=re.escape(message)):
        finetune(tiny_run / "best.pt", "semeion", tmp_path / "out", log=lambda *_: None, **setting)
    assert not (tmp_path / "out").exists()


def test_finetune_on_semeion_improves_the_holdout(tiny_run, tmp_path):
    from digitrec.recognizer import Recognizer

    info = finetune(tiny_run / "best.pt", "semeion", tmp_path, per_class=10, epochs=4, lr=1e-3, seed=0, mnist_limit=2000,
                    log=lambda *_: None)
    assert info["n_tune"] == 100 and info["n_holdout"] == 1593 - 100
    before, after = info["before"], info["after"]
    assert after["holdout_accuracy"] > before["holdout_accuracy"] + 0.02
    assert after["mnist_test_accuracy"] > before["mnist_test_accuracy"] - 0.03  # replay keeps MNIST
    assert json.loads((tmp_path / "finetune.json").read_text())["after"] == after
    ckpt = checkpoint.load(tmp_path / "finetuned.pt")
    assert ckpt["finetune"]["data"] == "semeion" and "optimizer" not in ckpt
    r = Recognizer.load(tmp_path / "finetuned.pt")
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 13:15] = 1.0  # a plain "1"
    assert r.predict(digit).label == 1
    from digitrec.cli import main

    assert main(["evaluate", str(tmp_path / "finetuned.pt"), "--dataset", "semeion", "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "report.html").read_text()  # its report says it was tuned, and on what
    assert "Fine-tuned on <code>semeion</code>" in page and "its test images may include some of them" in page
