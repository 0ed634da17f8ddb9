"""Scoring a checkpoint on a test set: predictions, accuracy, scikit-learn's report, the confusion matrix.

It computes figures and returns them; drawing them is `report.py`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import classification_report, confusion_matrix

from . import checkpoint, datasets
from .models import count_parameters
from .train import predict_logits, to_input


@dataclass
class Evaluation:
    images: np.ndarray       # N×28×28 uint8, as the model saw them
    labels: np.ndarray       # N true labels
    probs: np.ndarray        # N×10 calibrated probabilities
    metrics: dict            # everything metrics.json holds

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)


def score(labels: np.ndarray, probs: np.ndarray) -> dict:
    preds = probs.argmax(1)
    report = classification_report(labels, preds, labels=list(range(10)), digits=4,
                                   output_dict=True, zero_division=0)
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return {
        "test_accuracy": float((preds == labels).mean()),
        "test_loss": nll,
        "n_test": int(len(labels)),
        "errors": int((preds != labels).sum()),
        "classification_report": report,
        "confusion_matrix": confusion_matrix(labels, preds, labels=list(range(10))).tolist(),
    }


def classification_text(labels: np.ndarray, preds: np.ndarray) -> str:
    return classification_report(labels, preds, labels=list(range(10)), digits=4, zero_division=0)


def calibrated_probs(ckpt: dict, images: torch.Tensor, model=None, transform=None) -> torch.Tensor:
    """N×10 probabilities of a checkpoint on uint8 images N×28×28, with its normalization and temperature.

    A model with the "not one digit" class (`TrainConfig.reject`) has an 11th output; its
    share of the softmax is left out, so such a row sums to less than 1.

    `model` saves rebuilding it; `transform` maps the normalized batch first (test-time views).
    """
    model = model if model is not None else checkpoint.build_model(ckpt)
    norm = ckpt["normalization"]
    x = to_input(images, norm["mean"], norm["std"])
    if transform is not None:
        x = transform(x)
    return F.softmax(predict_logits(model, x) / ckpt["calibration"]["temperature"], dim=1)[:, :10]


def evaluate_checkpoint(path, dataset: str = "mnist", data_dir=None, limit: int = 0) -> Evaluation:
    ckpt = checkpoint.load(path)
    model = checkpoint.build_model(ckpt)
    test = datasets.load(dataset, data_dir)["test"].head(limit)
    probs = calibrated_probs(ckpt, test.images, model).numpy()
    labels = test.labels.numpy()
    metrics = {
        "model": ckpt["model"],
        "parameters": count_parameters(model),
        "checkpoint": str(path),
        "dataset": dataset,
        "epochs": ckpt["epoch"],
        **score(labels, probs),
    }
    return Evaluation(test.images.numpy(), labels, probs, metrics)
