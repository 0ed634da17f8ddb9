"""Fine-tuning a trained model to one person's handwriting from a few dozen examples per digit.

The examples (a folder root/<digit>/*.png, a CSV, or a named dataset standing in
for "my handwriting") are split, stratified and seeded, into a tuning part and a
hold-out; the model is trained briefly on the tuning part (augmented, mixed with
as many replayed MNIST training images so it does not forget MNIST), and its
accuracy on the hold-out and on MNIST test is reported before and after. The
result is a normal checkpoint (same model, input normalization and calibration
temperature) that predict, evaluate and export accept. Training from scratch is
`train.py`'s job.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from . import checkpoint, datasets
from .augment import Augment
from .config import check_ranges, whole
from .errors import DataError
from .train import evaluate, to_input, train_epoch


def split_examples(labels: torch.Tensor, holdout: float = 0.3, per_class: int = 0, seed: int = 0):
    """Indices (tune, hold): `per_class` examples of each digit to tune on (the rest held out),
    or else a stratified fraction `holdout` held out. Seeded."""
    if per_class:
        g = torch.Generator().manual_seed(seed)
        tune = []
        for c in range(10):
            members = torch.nonzero(labels == c).flatten()
            if len(members) <= per_class:
                raise DataError(f"digit {c} has {len(members)} examples; --per-class {per_class} "
                                "needs more, to leave some to hold out")
            tune.append(members[torch.randperm(len(members), generator=g)[:per_class]])
        tune = torch.sort(torch.cat(tune)).values
        mask = torch.ones(len(labels), dtype=torch.bool)
        mask[tune] = False
        return tune, torch.nonzero(mask).flatten()
    if not 0 < holdout < 1:
        raise DataError(f"--holdout must be between 0 and 1, got {holdout}")
    return datasets.stratified_holdout(labels, max(1, round(len(labels) * holdout)), seed)


def _pool(name: str, data_dir=None) -> datasets.Split:
    """All examples of a dataset: a folder/CSV pool, or a named dataset's train and test together."""
    data = datasets.load(name, data_dir)
    train, test = data["train"], data["test"]
    if train is test:
        return train
    return datasets.Split(torch.cat([train.images, test.images]), torch.cat([train.labels, test.labels]))


def finetune(ckpt_path, data: str, out, holdout: float = 0.3, per_class: int = 0, epochs: int = 30,
             lr: float = 3e-4, batch_size: int = 32, replay: float = 1.0, seed: int = 0, data_dir=None,
             threads: int = 0, mnist_limit: int = 0, log=print) -> dict:
    """Fine-tune the checkpoint at `ckpt_path` on `data`; write out/finetuned.pt and out/finetune.json.

    mnist_limit > 0 scores only the first N MNIST test images (quick runs).
    """
    check_ranges([("--epochs", epochs, whole(epochs) and epochs >= 1, "a whole number, at least 1"),
                  ("--lr", lr, 0 < lr < math.inf, "above 0"),
                  ("--batch-size", batch_size, whole(batch_size) and batch_size >= 1, "a whole number, at least 1"),
                  ("--replay", replay, 0 <= replay < math.inf, "0 or more"),
                  ("--per-class", per_class, whole(per_class) and per_class >= 0, "0 (use --holdout) or more"),
                  ("--threads", threads, whole(threads) and threads >= 0, "0 (all cores) or more")])
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(seed)
    out = Path(out)
    ckpt = checkpoint.load(ckpt_path)
    norm = ckpt["normalization"]
    pool = _pool(data, data_dir)
    tune_idx, hold_idx = split_examples(pool.labels, holdout, per_class, seed)
    tune, hold = pool.subset(tune_idx), pool.subset(hold_idx)
    if len(torch.unique(tune.labels)) < 10:
        log(f"warning: the tuning examples cover only digits {sorted(torch.unique(tune.labels).tolist())}")
    x_tune, x_hold = (to_input(s.images, norm["mean"], norm["std"]) for s in (tune, hold))
    mnist_data = datasets.load("mnist")
    mnist_test = mnist_data["test"].head(mnist_limit)
    x_mnist_test = to_input(mnist_test.images, norm["mean"], norm["std"])
    y_mnist_test = mnist_test.labels

    model = checkpoint.build_model(ckpt)

    def measure() -> dict:
        return {"holdout_accuracy": evaluate(model, x_hold, hold.labels)[1],
                "mnist_test_accuracy": evaluate(model, x_mnist_test, y_mnist_test)[1]}

    before = measure()
    log(f"{data}: {len(tune)} examples to tune on, {len(hold)} held out; before: hold-out "
        f"{before['holdout_accuracy']:.4f}, MNIST test {before['mnist_test_accuracy']:.4f}")

    augment = Augment(rotation=10.0, shift=2.0, zoom=0.1, background=(0.0 - norm["mean"]) / norm["std"])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    n_replay = int(round(len(tune) * replay))
    mnist_train = mnist_data["train"]
    for epoch in range(1, epochs + 1):
        x, y = x_tune, tune.labels
        if n_replay:  # as many MNIST training images, drawn afresh each epoch, against forgetting
            pick = torch.randint(len(mnist_train), (n_replay,), generator=g)
            x = torch.cat([x, to_input(mnist_train.images[pick], norm["mean"], norm["std"])])
            y = torch.cat([y, mnist_train.labels[pick]])
        train_epoch(model, optimizer, x, y, batch_size, g, desc=f"finetune {epoch}/{epochs}", augment=augment)
    model.eval()
    after = measure()
    log(f"after {epochs} epochs: hold-out {after['holdout_accuracy']:.4f}, MNIST test {after['mnist_test_accuracy']:.4f}")

    info = {"checkpoint": str(ckpt_path), "data": data, "n_tune": len(tune), "n_holdout": len(hold),
            "per_class": per_class, "holdout": holdout if not per_class else len(hold) / len(pool),
            "epochs": epochs, "lr": lr, "batch_size": batch_size, "replay": replay, "seed": seed,
            "n_mnist_test": len(mnist_test),
            "before": before, "after": after}
    new = {**checkpoint.slim(ckpt), "weights": model.state_dict(), "finetune": info,
           "metrics": {**ckpt.get("metrics", {}), **{f"finetune_{k}": v for k, v in after.items()}}}
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.save(out / "finetuned.pt", new)
    info["output"] = str(out / "finetuned.pt")
    (out / "finetune.json").write_text(json.dumps(info, indent=2))
    return info

