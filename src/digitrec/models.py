"""The model registry: a plain dict of names to constructors, and the networks in it.

Every model maps a batch N×1×28×28 (normalized as the checkpoint says) to N×10
logits. Softmax is applied by the loss during training and by inference after
calibration, so "Dense 10 softmax" of the paper is the last Linear plus that softmax.
This module knows nothing about data or training.
"""

from __future__ import annotations

import torch
from torch import nn


def keras_init_(model: nn.Module) -> nn.Module:
    """Initialize as Keras does: Glorot-uniform weights, zero biases (conv and dense)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class PaperCNN(nn.Module):
    """The paper's CNN (section 3.2): Conv32-Pool-Conv64-Pool-Dense128-Dense10, 225,034 parameters."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),   # 28 -> 26 -> 13
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # 13 -> 11 -> 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


REGISTRY: dict[str, type[nn.Module]] = {
    "paper_cnn": PaperCNN,
}


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
