"""OCR training examples (ocrdata.py): labelling rules, examples of a generated line, `--ocr-lines`."""

import re

import numpy as np
import pytest
import torch

from digitrec import datasets, ocrbench, ocrdata
from digitrec.config import TrainConfig
from digitrec.errors import DigitrecError
from digitrec.recipes import resolve
from digitrec.train import NOT_ONE_DIGIT, fit


@pytest.fixture(scope="module")
def train_digits():
    train = datasets.load("mnist")["train"].head(3000)
    return train.images.numpy(), train.labels.numpy()


def test_label_candidate_rules():
    own = np.zeros((2, 10, 20), bool)
    own[0, :, 0:8] = True    # a "3": 80 px
    own[1, :, 10:18] = True  # a "7": 80 px
    sizes = own.sum((1, 2))

    def label(x0, x1):
        mask = (own[0] | own[1])[:, x0:x1]
        return ocrdata.label_candidate(mask, (x0, 0, x1, 10), own, sizes, "37", NOT_ONE_DIGIT)

    assert label(0, 8) == 3 and label(10, 18) == 7           # each digit alone
    assert label(0, 11) == 3                                  # with a sliver (10 px) of its neighbour
    assert label(0, 18) == NOT_ONE_DIGIT                      # both digits: merged
    assert label(0, 4) == NOT_ONE_DIGIT                       # half a digit: a fragment
    assert label(0, 13) is None                               # 30% of the neighbour: neither


def test_examples_of_a_generated_line(train_digits):
    x, y = train_digits
    sample = ocrbench.make_sample(x, y, 3, ocrbench.BenchConfig(touching_share=1.0, seed=5))
    assert sample.touching
    crops, labels = ocrdata.line_examples(sample)
    assert len(crops) == len(labels) > len(sample.text)
    assert all(c.shape == (28, 28) for c in crops)
    digits = {str(l) for l in labels if l != NOT_ONE_DIGIT}
    assert digits == set(sample.text)                         # every digit found, no other label
    assert NOT_ONE_DIGIT in labels                            # fragments and merged pairs


def test_make_balances_digits_and_rejects(train_digits):
    x, y = train_digits
    images, labels = ocrdata.make(x, y, lines=6, seed=0, progress=False)
    assert images.dtype == torch.uint8 and images.shape[1:] == (28, 28)
    n_reject = int((labels == NOT_ONE_DIGIT).sum())
    assert 0 < n_reject == len(labels) - n_reject
    again = ocrdata.make(x, y, lines=6, seed=0, progress=False)
    assert (again[0] == images).all() and (again[1] == labels).all()


def test_ocr_lines_need_the_reject_class(tmp_path):
    with pytest.raises(DigitrecError, match="needs --reject"):
        fit(resolve(ocr_lines=10), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_training_with_ocr_lines_adds_the_examples(tmp_path):
    logs = []
    cfg = TrainConfig(model="fast_cnn", limit=2000, val_split=400, epochs=1, batch_size=64, reject=0.15,
                      ocr_lines=8, seed=0)
    fit(cfg, tmp_path, log=logs.append)
    line = next(l for l in logs if l.startswith("OCR examples:"))
    n_crops = int(line.split()[2].replace(",", ""))
    assert "from 8 lines" in line and n_crops > 0
    model_line = next(l for l in logs if l.startswith("model "))
    assert int(re.search(r"train ([\d,]+),", model_line)[1].replace(",", "")) == 1600 + n_crops
