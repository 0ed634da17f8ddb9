"""Ensembles of models: the mean of their calibrated probabilities, optionally with test-time augmentation.

Members are .pt checkpoints or .onnx exports (`evaluation.load_scorer`). Each keeps its
own input normalization and temperature (as its checkpoint or export says), so members of
different models and recipes can be mixed, also models with and without the "not one
digit" class (`combine`). Test-time augmentation (TTA) averages, per member, the
probabilities of a few fixed views of each image (the original, ±5° rotations, 1-pixel shifts). The result is an
`evaluation.Evaluation`, scored and reported exactly like a single model.
This module trains nothing and draws nothing.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from . import datasets
from .errors import DigitrecError
from .evaluation import Evaluation, load_scorer, score

# fixed TTA views: (rotation degrees, shift x px, shift y px)
TTA_VIEWS = ((0, 0, 0), (5, 0, 0), (-5, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))


def _view(x: torch.Tensor, degrees: float, dx: float, dy: float, background: float) -> torch.Tensor:
    if not (degrees or dx or dy):
        return x
    n, _, h, w = x.shape
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), -dx * 2 / w], [math.sin(a), math.cos(a), -dy * 2 / h]],
                         dtype=x.dtype).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, align_corners=False) + background


def rejects(info: dict) -> bool:
    """Whether a member's probabilities carry a digit mass: a checkpoint, or an export's metadata,
    of a model trained with the "not one digit" class, or an exported ensemble holding one."""
    return (info.get("config") or {}).get("reject", 0) > 0 or any(rejects(m) for m in info.get("members", []))


def combine(probs: list[torch.Tensor], rejecting: list[bool]) -> torch.Tensor:
    """The ensemble's N×10 probabilities from its members' (N×10 each, calibrated).

    Which digit: the mean of the members' probabilities among the ten digits. Whether it is
    one digit at all: the mean digit mass (the row sum) of the members with a reject class,
    which a model without one cannot judge (its rows sum to 1). With no such member, or only
    such members, this is about the plain mean of the members' probabilities.
    """
    mass = [p.sum(1, keepdim=True) for p in probs]
    digits = torch.stack([p / m.clamp_min(1e-12) for p, m in zip(probs, mass)]).mean(0)
    judges = [m for m, r in zip(mass, rejecting) if r] or mass
    return digits * torch.stack(judges).mean(0)


def member_probs(probs_of, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """N×10 calibrated probabilities of one member (`evaluation.load_scorer`) on uint8 images N×28×28,
    the mean over the TTA views with `tta`."""
    views = TTA_VIEWS if tta else TTA_VIEWS[:1]
    probs = [probs_of(images, lambda x, bg, v=v: _view(x, *v, background=bg)) for v in views]
    return torch.stack(probs).mean(0)


def evaluate_ensemble(paths, dataset: str = "mnist", data_dir=None, limit: int = 0,
                      tta: bool = False) -> Evaluation:
    """Score the ensemble of the models at `paths` (.pt checkpoints or .onnx exports) on a test set,
    like evaluation.evaluate_checkpoint."""
    if isinstance(paths, (str, os.PathLike)) or not paths:
        raise DigitrecError(f"an ensemble needs a list of model files, got {paths!r}")
    members = [load_scorer(p) for p in paths]
    data = datasets.load(dataset, data_dir)
    tests = [datasets.unseen_test(dataset, data, info.get("config", {})) for _, info in members]
    if any(len(t) != len(tests[0]) or not torch.equal(t.images, tests[0].images) for t in tests):
        raise DigitrecError(f"the members trained on {dataset} with different seeds, so each held out other "
                            "images of it: no test image is unseen by all of them; score them on another test set")
    test = tests[0].head(limit)
    probs = combine([member_probs(probs_of, test.images, tta) for probs_of, _ in members],
                    [rejects(info) for _, info in members]).numpy()
    labels = test.labels.numpy()
    metrics = {
        "model": "ensemble of " + ", ".join(info["model"] for _, info in members) + (" with TTA" if tta else ""),
        "parameters": sum(info["parameters"] for _, info in members),
        "checkpoint": ", ".join(str(p) for p in paths),
        "members": [str(p) for p in paths],
        "tta": tta,
        "dataset": dataset,
        "epochs": [info["epochs"] for _, info in members],  # each member's own
        **score(labels, probs),
    }
    return Evaluation(test.images.numpy(), labels, np.asarray(probs), metrics)
