"""Named datasets as in-memory tensors, and the train/validation/test splits.

Every dataset arrives here as uint8 images N×28×28 (ink high, MNIST form) with
int64 labels, and is held whole in memory: the training loop indexes tensors and
never touches a sample in Python. This module reads no file format itself; the
format readers live in `mnist.py` (and their siblings for other datasets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import mnist
from .errors import DataError


@dataclass
class Split:
    images: torch.Tensor  # N×28×28 uint8, ink = high
    labels: torch.Tensor  # N int64

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "Split":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Split(self.images[idx], self.labels[idx])


def _split(images: np.ndarray, labels: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)))


LOADERS = {
    "mnist": lambda data_dir=None: mnist.load(data_dir),
}


def load(name: str = "mnist", data_dir=None) -> dict[str, Split]:
    """{'train': Split, 'test': Split} for a dataset name."""
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}")
    return {k: _split(*v) for k, v in LOADERS[name](data_dir=data_dir).items()}


def stratified_holdout(labels: torch.Tensor, n_val: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val): n_val images held out, each class in proportion, seeded."""
    if not 0 < n_val < len(labels):
        raise DataError(f"validation split {n_val} must be between 1 and {len(labels) - 1}")
    g = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(labels, return_counts=True)
    quota = np.floor(counts.numpy() * n_val / len(labels)).astype(int)
    # hand the rounding remainder to the classes with the largest fractional parts
    frac = counts.numpy() * n_val / len(labels) - quota
    quota[np.argsort(-frac, kind="stable")[: n_val - quota.sum()]] += 1
    val = []
    for c, q in zip(classes.tolist(), quota):
        members = torch.nonzero(labels == c).flatten()
        val.append(members[torch.randperm(len(members), generator=g)[:q]])
    val = torch.sort(torch.cat(val)).values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val


def prepare(name: str, data_dir=None, val_split: int = 5000, limit: int = 0, seed: int = 0) -> dict[str, Split]:
    """{'train', 'val', 'test'} for training. val_split=0 validates on test, as the paper did.

    `limit` keeps the first N training images (and at most N test images), for quick runs.
    """
    data = load(name, data_dir)
    train, test = data["train"], data["test"]
    if limit:
        train = train.subset(torch.arange(min(limit, len(train))))
        test = test.subset(torch.arange(min(limit, len(test))))
    if val_split:
        n_val = min(val_split, len(train) // 5) if limit else val_split
        tr, va = stratified_holdout(train.labels, n_val, seed)
        return {"train": train.subset(tr), "val": train.subset(va), "test": test}
    return {"train": train, "val": test, "test": test}
