"""Teachers for knowledge distillation: trained checkpoints whose softened probabilities become soft targets.

`soft_targets` runs each teacher once over the training images and averages their
probabilities at a temperature (Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge
in a Neural Network"); `distill_loss` mixes those targets with the hard labels. A student
trained this way learns from an ensemble, and then reads at a single model's cost.
This file runs teachers and scores batches; the training loop is `train.py`'s.
"""

from __future__ import annotations

import glob
import os

import torch
import torch.nn.functional as F

from . import checkpoint
from .errors import DigitrecError


def paths(spec: str) -> list[str]:
    """'a.pt,runs/p2*/best.pt' -> the checkpoint paths, globs expanded (sorted); an error for one that matches nothing."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        found = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
        if not found:
            raise DigitrecError(f"--teacher {part!r} matches no file")
        out += found
    for p in out:
        if not os.path.isfile(p):
            raise DigitrecError(f"--teacher {p}: no such file")
        if not p.endswith(".pt"):
            raise DigitrecError(f"--teacher takes .pt checkpoints written by digitrec train, not {p}")
    return out


def soft_targets(ckpt_paths: list[str], images: torch.Tensor, temperature: float, log=print) -> torch.Tensor:
    """N×10: the mean over the teachers of softmax(digit logits / temperature) on uint8 images N×28×28.

    Each teacher sees the images with its own input normalization; a teacher with the
    "not one digit" class contributes its ten digit logits only.
    """
    from .train import predict_logits, to_input

    total = torch.zeros(len(images), 10)
    for path in ckpt_paths:
        ckpt = checkpoint.load(path)
        # channels-last batches of 256: half the time of contiguous batches of 2,000 on a 2-core CPU
        model = checkpoint.build_model(ckpt).to(memory_format=torch.channels_last)
        x = to_input(images, ckpt["normalization"]["mean"], ckpt["normalization"]["std"])
        logits = predict_logits(model, x.contiguous(memory_format=torch.channels_last), batch_size=256)
        total += F.softmax(logits[:, :10].float() / temperature, dim=1)
        log(f"teacher {path}: done")
    return total / len(ckpt_paths)


def distill_loss(logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor, weight: float,
                 temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 - weight) × hard cross-entropy + weight × T² × KL(soft targets ‖ student), per row, averaged.

    Rows whose soft target is NaN (OCR crops, "not one digit" pairs: no teacher saw them)
    take the hard loss alone. The student's probabilities are over all its outputs (an 11th
    class gets target 0), softened by the same temperature.
    """
    hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="none")
    taught = ~soft[:, 0].isnan()
    logp = F.log_softmax(logits.float() / temperature, dim=1)[:, :soft.shape[1]]
    q = soft.nan_to_num(0.0)
    kl = (torch.special.xlogy(q, q) - q * logp).sum(1) * temperature ** 2
    mixed = torch.where(taught, (1 - weight) * hard + weight * kl, hard)
    return mixed.mean()
