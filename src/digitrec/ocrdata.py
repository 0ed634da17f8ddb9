"""Training examples for OCR: the crops OCR's segmentation makes of synthetic lines of training digits.

OCR (`ocr.py`) cuts a line into candidate digits and lets the classifier say which
cuts hold one digit. A classifier trained only on whole MNIST digits is often sure
of a fragment (the left half of a 0 reads as a 6) or of two merged digits (a 1
inside a 7 reads as a 7), so touching digits were misread. Here lines are composed
from *training* digits with the OCR benchmark's generator (`ocrbench.make_sample`),
cut with OCR's own candidates (every cut a model could ask for), and each candidate
is labelled by the generator's per-digit ink masks:

- a digit, when it holds at least WHOLE of that digit's ink, less than STRAY of any
  other digit's, and at least PURE of its own ink is that digit's (a thin 1 with a
  sliver of its neighbour still counts: a cut through crossing strokes leaves one);
- "not one digit" (`train.NOT_ONE_DIGIT`), when it holds less than PART of every
  digit (a fragment), or at least TWO of a second digit (merged digits);
- neither (left out) in between.

`digitrec train --ocr-lines N` adds these examples to the training set (as many
"not one digit" examples as digits, drawn at random). The benchmark itself composes
MNIST *test* digits, which `fit` never passes here. This module trains nothing
(`train.py` does) and is not the OCR (`ocr.py`).
"""

from __future__ import annotations

import numpy as np
import torch

PURE, WHOLE, STRAY = 0.7, 0.85, 0.25    # a digit: its share of the crop, of itself, of any other digit
PART, TWO = 0.6, 0.5                     # "not one digit": below PART of any digit, or TWO of a second one
LENGTH = (3, 8)                          # digits per synthetic line
SEED_BASE = 1_000_000                    # line seeds far from the benchmark's


def label_candidate(mask: np.ndarray, box, own: np.ndarray, sizes: np.ndarray, text: str, reject: int) -> int | None:
    """The label of a candidate (its stroke MASK inside BOX) given each digit's ink OWN (D×H×W), or None."""
    x0, y0, x1, y1 = box
    inter = (own[:, y0:y1, x0:x1] & mask).sum((1, 2))
    j = int(inter.argmax())
    purity = inter[j] / max(int(mask.sum()), 1)
    covers = inter / np.maximum(sizes, 1)
    other = float(np.delete(covers, j).max()) if len(covers) > 1 else 0.0
    if purity >= PURE and covers[j] >= WHOLE and other < STRAY:
        return int(text[j])
    if covers[j] < PART or other >= TWO:
        return reject
    return None


def line_examples(sample) -> tuple[list[np.ndarray], list[int]]:
    """The labelled 28×28 candidate crops of one generated sample (ocrbench.Sample)."""
    from .ocr import ink_map, segment
    from .train import NOT_ONE_DIGIT

    ink = ink_map(sample.image)[0]
    found = segment(None, ink)
    if found is None or found[1] != (1.0, 1.0) or ink.shape != sample.image.size[::-1]:
        return [], []  # big writing is worked on scaled down: its cuts no longer match the masks
    own = np.zeros((len(sample.boxes), *ink.shape), bool)
    for j, ((bx0, by0, bx1, by1), m) in enumerate(zip(sample.boxes, sample.masks)):
        own[j, by0:by1, bx0:bx1] = m
    sizes = own.sum((1, 2))
    crops, labels = [], []
    for _, cands, _ in found[2]:
        for c in cands:
            if c.crop is None:
                continue
            label = label_candidate(c.mask, c.box, own, sizes, sample.text, NOT_ONE_DIGIT)
            if label is not None:
                crops.append(c.crop)
                labels.append(label)
    return crops, labels


def make(images, labels, lines: int, seed: int = 0, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples from LINES synthetic lines of IMAGES (N×28×28 uint8, training digits): every
    digit crop and as many "not one digit" crops, as uint8 28×28 images and int64 labels."""
    from tqdm import tqdm

    from .ocrbench import BenchConfig, make_sample
    from .train import NOT_ONE_DIGIT

    images, labels = np.asarray(images), np.asarray(labels)
    cfg = BenchConfig(n=lines, length=LENGTH, seed=SEED_BASE + seed)
    crops, out = [], []
    for i in tqdm(range(lines), desc="OCR examples", unit="line", disable=not progress or None, leave=False):
        c, l = line_examples(make_sample(images, labels, i, cfg))
        crops += c
        out += l
    if not crops:
        return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
    x = torch.from_numpy((np.stack(crops) * 255).round().astype(np.uint8))
    y = torch.tensor(out, dtype=torch.int64)
    digits, rejects = torch.nonzero(y != NOT_ONE_DIGIT).flatten(), torch.nonzero(y == NOT_ONE_DIGIT).flatten()
    g = torch.Generator().manual_seed(seed)
    keep = torch.cat([digits, rejects[torch.randperm(len(rejects), generator=g)[:len(digits)]]]).sort().values
    return x[keep], y[keep]
