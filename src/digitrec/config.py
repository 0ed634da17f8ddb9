"""The training configuration: every default in one visible dataclass.

The resolved config is written as `config.json` next to each run's outputs and
stored inside every checkpoint. Defaults are the paper's (section 3.3 and its
appendix code): Adam, categorical cross-entropy, batch 64, 10 epochs, inputs
scaled to [0, 1]; except `val_split`: the paper validated on the test set, and
digitrec holds 5,000 training images out instead (`val_split=0` is the paper's way).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from .errors import DigitrecError

SCHEDULES = ("constant", "onecycle", "cosine", "exponential")
PRECISIONS = ("fp32", "bf16")


def whole(v) -> bool:
    """Whether v is a whole number (an int, not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool)


def check_ranges(rules) -> None:
    """rules: (flag, value, ok, allowed) for each setting; DigitrecError for the first not ok."""
    for flag, value, ok, allowed in rules:
        if not ok:
            raise DigitrecError(f"{flag} must be {allowed}; got {value}")


@dataclass
class TrainConfig:
    model: str = "paper_cnn"      # name in the model registry (models.REGISTRY)
    dataset: str = "mnist"        # training data: a dataset name (datasets.load): mnist, usps, semeion, optdigits, a folder or .csv
    train_on: str = ""            # a mixture instead, e.g. "mnist,usps:3,optdigits" (NAME[:WEIGHT], see datasets.prepare); "" = dataset
    epochs: int = 10              # paper: 10
    batch_size: int = 64          # paper: 64
    lr: float = 1e-3              # Adam learning rate (Keras default)
    beta1: float = 0.9            # Adam beta_1 (Keras default)
    beta2: float = 0.999          # Adam beta_2 (Keras default)
    eps: float = 1e-7             # Adam epsilon (Keras default; PyTorch's is 1e-8; Keras adds it before bias correction)
    weight_decay: float = 0.0     # decoupled (AdamW) weight decay; the paper uses none
    val_split: int = 5000         # images held out of train for validation (stratified, seeded); 0 = validate on test like the paper
    limit: int = 0                # use only the first N training images (0 = all); for quick runs
    seed: int = 0                 # seeds init, shuffling and the hold-out: same seed, same history on CPU
    threads: int = 0              # torch intra-op threads (0 = all cores)
    input_mean: float = 0.0       # input normalization after scaling to [0, 1]: (x - mean) / std
    input_std: float = 1.0        #   the paper feeds x / 255 as is
    data_dir: str | None = None   # MNIST folder (else DIGITREC_DATA, ../shared/datasets/mnist, the cache)
    # --- beyond the paper (defaults = off, so the paper's run is unchanged); see recipes.py and docs/training.md
    recipe: str = ""              # the named recipe these settings came from ("" = none; recipes.RECIPES)
    schedule: str = "constant"    # LR schedule, stepped per batch: constant | onecycle | cosine | exponential
    warmup: float = 0.25          # onecycle: fraction of steps rising to lr; cosine: fraction of linear warm-up
    lr_decay: float = 0.9         # exponential: LR multiplied by this each epoch (applied smoothly per batch)
    label_smoothing: float = 0.0  # cross-entropy label smoothing (0 = plain one-hot targets)
    ema: float = 0.0              # decay of an exponential moving average of the weights (e.g. 0.999; 0 = off);
                                  #   when on, the EMA weights are validated, selected and saved
    rotation: float = 0.0         # augmentation: max rotation in degrees either way (0 = off)
    shift: float = 0.0            # augmentation: max shift in pixels either way
    zoom: float = 0.0             # augmentation: max relative zoom either way (0.1 = 90%..110%)
    elastic: float = 0.0          # augmentation: elastic distortion scale in pixels (0 = off)
    elastic_sigma: float = 4.0    # augmentation: elastic smoothness (Gaussian std in pixels)
    stroke: float = 0.0           # augmentation: max pen-width change either way, 0..1 (1 = about ±2 px; 0 = off)
    thin: float = -1.0            #   ... but thinner by at most this, 0..1 (-1 = as much as stroke); thin pens
                                  #   lose strokes that MNIST's already thin digits cannot spare
    reject: float = 0.0           # share of each batch replaced by two touching digits, labelled as an 11th
                                  #   class "not one digit" (for OCR: merged digits get a low probability); 0 = off
    ocr_lines: int = 0            # synthetic lines of training digits whose OCR cuts join the training set
                                  #   (digits, and fragments/merged pairs as "not one digit"; ocrdata.py); needs reject
    deskew: bool = False          # the model straightens each digit's slant first (image moments, models.Deskew);
                                  #   part of the network, so export, predict and OCR do the same
    teacher: str = ""             # knowledge distillation: checkpoints (comma-separated, globs) whose mean softened
                                  #   probabilities on each training image are soft targets (teacher.py); "" = off
    teacher_weight: float = 0.9   #   share of the loss that follows the soft targets (the rest: the hard labels)
    teacher_temperature: float = 4.0  # softmax temperature of teachers and student in that share
    channels_last: bool = True    # NHWC memory format for the convolutions (faster on CPU; same results)
    fused_adam: bool = True       # fused Adam kernel (faster on CPU; same maths up to float rounding)
    precision: str = "fp32"       # forward pass in fp32, or bf16 (autocast; weights, optimizer and BN stay fp32):
                                  #   1.6-1.9x on a CPU with AMX (measured), slower on CPUs without bf16 units (docs/training.md)

    def check(self) -> "TrainConfig":
        """Raise DigitrecError naming the first setting out of its range (as its CLI flag); else self."""
        from .models import REGISTRY

        flag = {f.name: "--" + f.name.replace("_", "-") for f in dataclasses.fields(self)}
        kinds = []  # the Python API may pass anything: 1.5 epochs, an infinite lr, a string
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "int":
                kinds.append((flag[f.name], repr(v), whole(v), "a whole number"))
            elif f.type == "float":
                kinds.append((flag[f.name], repr(v), (whole(v) or isinstance(v, float)) and math.isfinite(v),
                              "a finite number"))
        check_ranges(kinds)
        if self.model not in REGISTRY:
            raise DigitrecError(f"unknown model {self.model!r}; known: {', '.join(REGISTRY)}")
        if self.schedule not in SCHEDULES:
            raise DigitrecError(f"unknown schedule {self.schedule!r}; known: {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise DigitrecError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        rules = [  # (field, ok, allowed range)
            ("epochs", self.epochs >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("lr", self.lr > 0, "above 0"),
            ("beta1", 0 <= self.beta1 < 1, "in [0, 1)"),
            ("beta2", 0 <= self.beta2 < 1, "in [0, 1)"),
            ("eps", self.eps > 0, "above 0"),
            ("weight_decay", self.weight_decay >= 0, "0 or more"),
            ("val_split", self.val_split >= 0, "0 (validate on test) or more"),
            ("limit", self.limit >= 0, "0 (all) or more"),
            ("threads", self.threads >= 0, "0 (all cores) or more"),
            ("input_std", self.input_std > 0, "above 0"),
            ("warmup", 0 <= self.warmup < 1, "in [0, 1)"),
            ("lr_decay", 0 < self.lr_decay <= 1, "in (0, 1]"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("ema", 0 <= self.ema < 1, "0 (off) or in (0, 1)"),
            ("rotation", 0 <= self.rotation <= 180, "in [0, 180] degrees"),
            ("shift", self.shift >= 0, "0 or more pixels"),
            ("zoom", 0 <= self.zoom < 1, "in [0, 1)"),
            ("elastic", self.elastic >= 0, "0 (off) or more pixels"),
            ("elastic_sigma", self.elastic_sigma > 0, "above 0"),
            ("stroke", 0 <= self.stroke <= 1, "in [0, 1]"),
            ("thin", self.thin == -1 or 0 <= self.thin <= 1, "-1 (as --stroke) or in [0, 1]"),
            ("reject", 0 <= self.reject < 1, "0 (off) or in (0, 1)"),
            ("ocr_lines", self.ocr_lines >= 0 and (self.reject > 0 or not self.ocr_lines),
             "0 or more, and it needs --reject (the 'not one digit' class its fragments and merged pairs are labelled with)"),
            ("teacher_weight", 0 <= self.teacher_weight <= 1, "in [0, 1]"),
            ("teacher_temperature", self.teacher_temperature > 0, "above 0"),
        ]
        check_ranges([(flag[name], getattr(self, name), ok, allowed) for name, ok, allowed in rules])
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
