"""Scoring a model on a test set: predictions, accuracy, scikit-learn's report, the confusion matrix.

A model is a .pt checkpoint (run in PyTorch) or an exported .onnx file, an ensemble file
too (run on ONNX Runtime, as `predict`, `serve` and `ocr` run it): `load_scorer`.
It computes figures and returns them; drawing them is `report.py`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import classification_report, confusion_matrix

from . import checkpoint, datasets
from .models import count_parameters, create_model
from .train import predict_logits, to_input


@dataclass
class Evaluation:
    images: np.ndarray       # N×28×28 uint8, as the model saw them
    labels: np.ndarray       # N true labels
    probs: np.ndarray        # N×10 calibrated probabilities
    metrics: dict            # everything metrics.json holds
    info: dict = field(default_factory=dict)  # what the model is (`load_scorer`); empty for an ensemble

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


def _leaves(meta: dict) -> list[dict]:
    """The single models in an export's metadata (an ensemble file lists its members)."""
    return [leaf for m in meta["members"] for leaf in _leaves(m)] if meta.get("members") else [meta]


def load_scorer(path):
    """A model file -> (probs, info).

    `probs(images, view=None)` gives the N×10 calibrated probabilities of uint8 images N×28×28;
    `view(x, background)`, if given, maps the model's input batch first (test-time views).
    A .pt checkpoint runs in PyTorch with its normalization and temperature; a .onnx file of
    `digitrec export` (an ensemble file too) on ONNX Runtime. `info` says what the model is:
    model, parameters, epochs, config, members (for `ensemble.rejects`), finetune and history.
    """
    from .recognizer import Recognizer, is_checkpoint

    path = Path(path)
    if not is_checkpoint(path):  # an ONNX export, whatever its name
        rec = Recognizer.load(path, threads=torch.get_num_threads())
        leaves = _leaves(rec.metadata)
        try:
            parameters = sum(count_parameters(create_model(m["model"], **m.get("model_kwargs", {}))) for m in leaves)
        except (KeyError, TypeError):  # metadata of another tool's export: the count is unknown
            parameters = 0

        def onnx_probs(images, view=None):
            x = images.unsqueeze(1).float().div_(255.0)
            return torch.from_numpy(rec.predict_normalized((view(x, 0.0) if view else x).numpy()))

        return onnx_probs, {"model": rec.name, "parameters": parameters,
                            "epochs": max((m.get("epoch") or 0) for m in leaves),
                            "config": rec.metadata.get("config", {}), "members": rec.metadata.get("members", []),
                            "finetune": None, "history": [], "calibration": rec.metadata.get("calibration"),
                            "sizes": None}
    ckpt = checkpoint.load(path)
    model = checkpoint.build_model(ckpt)
    background = -ckpt["normalization"]["mean"] / ckpt["normalization"]["std"]

    def ckpt_probs(images, view=None):
        return calibrated_probs(ckpt, images, model, (lambda x: view(x, background)) if view else None)

    return ckpt_probs, {"model": ckpt["model"], "parameters": count_parameters(model), "epochs": ckpt["epoch"],
                        "config": ckpt.get("config", {}), "members": [], "finetune": ckpt.get("finetune"),
                        "history": ckpt.get("history", []), "calibration": ckpt.get("calibration"),
                        "sizes": ckpt.get("sizes")}


def evaluate_checkpoint(path, dataset: str | None = None, data_dir=None, limit: int = 0) -> Evaluation:
    """Score a .pt checkpoint or .onnx model on a test set (default: the dataset it was trained on)."""
    probs_of, info = load_scorer(path)
    cfg = info["config"]
    dataset = dataset or cfg.get("dataset", "mnist")
    data = datasets.load(dataset, data_dir or cfg.get("data_dir"))
    test = datasets.unseen_test(dataset, data, cfg).head(limit)  # never the model's own training images
    probs = probs_of(test.images).numpy()
    labels = test.labels.numpy()
    metrics = {
        "model": info["model"],
        "parameters": info["parameters"],
        "checkpoint": str(path),
        "dataset": dataset,
        "epochs": info["epochs"],
        "calibration": info["calibration"],
        "finetuned_on": (info["finetune"] or {}).get("data"),
        "trained_sizes": info["sizes"],  # training and validation images of the run (None: not recorded)
        **score(labels, probs),
    }
    return Evaluation(test.images.numpy(), labels, probs, metrics, info)
