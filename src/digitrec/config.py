"""The training configuration: every default in one visible dataclass.

The resolved config is written as `config.json` next to each run's outputs and
stored inside every checkpoint. Defaults are the paper's (section 3.3 and its
appendix code): Adam, categorical cross-entropy, batch 64, 10 epochs, inputs
scaled to [0, 1].
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass
class TrainConfig:
    model: str = "paper_cnn"      # name in the model registry (models.REGISTRY)
    dataset: str = "mnist"        # training data: a dataset name (datasets.load)
    epochs: int = 10              # paper: 10
    batch_size: int = 64          # paper: 64
    lr: float = 1e-3              # Adam learning rate (Keras default)
    beta1: float = 0.9            # Adam beta_1 (Keras default)
    beta2: float = 0.999          # Adam beta_2 (Keras default)
    eps: float = 1e-7             # Adam epsilon (Keras default; PyTorch's is 1e-8)
    weight_decay: float = 0.0     # decoupled (AdamW) weight decay; the paper uses none
    val_split: int = 5000         # images held out of train for validation (stratified, seeded); 0 = validate on test like the paper
    limit: int = 0                # use only the first N training images (0 = all); for quick runs
    seed: int = 0                 # seeds init, shuffling and the hold-out: same seed, same history on CPU
    threads: int = 0              # torch intra-op threads (0 = all cores)
    input_mean: float = 0.0       # input normalization after scaling to [0, 1]: (x - mean) / std
    input_std: float = 1.0        #   the paper feeds x / 255 as is
    data_dir: str | None = None   # MNIST folder (else DIGITREC_DATA, ../shared/datasets/mnist, the cache)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
