"""Named datasets as in-memory tensors, and the train/validation/test splits.

Every dataset arrives here as uint8 images N×28×28 (ink high, MNIST form) with
int64 labels, and is held whole in memory: the training loop indexes tensors and
never touches a sample in Python. This module reads no file format itself; the
format readers live in `mnist.py` and `handwriting.py` (USPS, Semeion, optdigits, folders, CSV).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import handwriting, mnist
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

    def head(self, n: int) -> "Split":
        """The first n images (all of them when n is 0): what --limit keeps."""
        if n < 0:
            raise DataError(f"--limit must be 0 (all) or more; got {n}")
        return self.subset(torch.arange(min(n, len(self)))) if n else self


def _split(images: np.ndarray, labels: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)))


LOADERS = {
    "mnist": mnist.load,  # data_dir may also be a parent holding mnist/, so one --data-dir serves a mixture
    **handwriting.LOADERS,  # usps, semeion, optdigits
}


def load(name: str = "mnist", data_dir=None) -> dict[str, Split]:
    """{'train': Split, 'test': Split} for a dataset name, a folder root/<digit>/*.png or a .csv file.

    A folder or CSV without its own train/test parts is one pool: 'train' and 'test' are then
    the same Split object (evaluation scores all of it; `prepare` holds out a test part).
    """
    if name in LOADERS:
        raw = LOADERS[name](data_dir=data_dir)
    elif Path(name).is_dir():
        raw = handwriting.load_folder(name)
    elif name.lower().endswith(".csv"):
        raw = handwriting.load_csv(name)
    elif "/" in name or "\\" in name:
        raise DataError(f"{name}: no such folder (expected a folder root/<digit>/*.png or a .csv file)")
    else:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}, "
                        "a folder root/<digit>/*.png or a .csv file")
    out = {"train": _split(*raw["train"])}
    out["test"] = out["train"] if raw["test"] is raw["train"] else _split(*raw["test"])
    return out


def parse_mixture(spec: str) -> list[tuple[str, float]]:
    """'mnist,usps:3' -> [('mnist', 1.0), ('usps', 3.0)]: names (or paths) with optional weights.

    A weight w means each epoch sees that dataset's training images w times (the fractional
    part as a seeded random subset), so small datasets can count for more.
    """
    parts = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        name, _, weight = item.rpartition(":")
        try:
            w = float(weight)
        except ValueError:
            name, w = item, 1.0
        if not name or not w > 0:
            raise DataError(f"bad mixture item {item!r}: expected NAME or NAME:WEIGHT with WEIGHT > 0")
        parts.append((name, w))
    if not parts:
        raise DataError(f"empty dataset mixture {spec!r}")
    return parts


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


def _pool_parts(pool: Split, seed: int) -> tuple[Split, Split]:
    """A pool (folder, CSV) split into training images and its test set: a seeded, stratified fifth."""
    tr, te = stratified_holdout(pool.labels, max(1, len(pool) // 5), seed)
    return pool.subset(tr), pool.subset(te)


def _same_source(a: str, b: str) -> bool:
    """Whether two dataset names are the same data: equal, or paths to the same folder or file
    (`mine`, `mine/` and `/abs/mine` alike)."""
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def unseen_test(name: str, data: dict[str, Split], config: dict) -> Split:
    """The test images of dataset `name` (`data`, as `load` gave it) for the model trained with `config`
    (its TrainConfig as a dict): the dataset's test part; for a pool (folder, CSV), the fifth that
    `prepare` held out of that model's training when it trained on the pool (same seed), else the
    whole pool."""
    train, test = data["train"], data["test"]
    trained_on = [n for n, _ in parse_mixture(config.get("train_on") or config.get("dataset") or "mnist")]
    if train is test and any(_same_source(name, n) for n in trained_on):
        return _pool_parts(train, int(config.get("seed", 0)))[1]
    return test


def prepare(name: str, data_dir=None, val_split: int = 5000, limit: int = 0, seed: int = 0) -> dict:
    """{'train', 'val', 'test', 'tests'} for training. `name` is a dataset or a mixture ('mnist,usps:3').

    Validation (val_split images, at most a fifth) is held out of the mixture's training part,
    stratified by dataset and class; val_split=0 validates on test, as the paper did. 'tests'
    maps each dataset to its own test set ('test' is the first one's). `limit` keeps the first
    N training images (and at most N test images) of each dataset, for quick runs.
    """
    parts = parse_mixture(name)
    trains, weights, tests = [], [], {}
    for n, w in parts:
        data = load(n, data_dir)
        train, test = data["train"], data["test"]
        if train is test:  # a pool (folder, CSV): hold out a seeded fifth as its test set
            train, test = _pool_parts(train, seed)
        train, test = train.head(limit), test.head(limit)
        trains.append(train)
        weights.append(w)
        tests[n] = test
    source = torch.cat([torch.full((len(t),), i) for i, t in enumerate(trains)])
    train = Split(torch.cat([t.images for t in trains]), torch.cat([t.labels for t in trains]))
    if val_split:
        tr, va = stratified_holdout(source * 10 + train.labels, max(1, min(val_split, len(train) // 5)), seed)
        val = train.subset(va)
    else:
        tr = torch.arange(len(train))
        val = Split(torch.cat([t.images for t in tests.values()]), torch.cat([t.labels for t in tests.values()]))
    g = torch.Generator().manual_seed(seed + 2)
    keep = []
    for i, w in enumerate(weights):  # repeat each dataset's training images by its weight
        own = tr[source[tr] == i]
        keep += [own] * int(w)
        if w % 1:
            keep.append(own[torch.randperm(len(own), generator=g)[: round(len(own) * (w % 1))]])
    keep = torch.cat(keep) if len(weights) > 1 or weights[0] != 1 else tr
    first = next(iter(tests.values()))
    return {"train": train.subset(keep), "val": val, "test": first, "tests": tests}
