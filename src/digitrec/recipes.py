"""Named training recipes: sets of TrainConfig settings chosen for a goal, resolved into one config.

A recipe is only a dict of field overrides on top of `TrainConfig`'s defaults (the
paper's settings); flags given on the command line override the recipe in turn.
The resolved config, with `recipe` naming its source, is what `fit` saves as
config.json and inside every checkpoint. Figures for each recipe, with the
commands that produced them, are in docs/training.md.
This module holds settings only; training is `train.py`'s job.
"""

from __future__ import annotations

from dataclasses import fields

from .config import TrainConfig
from .errors import DigitrecError

AUGMENT = dict(rotation=10.0, shift=2.5, zoom=0.1)  # the usual MNIST affine ranges

RECIPES: dict[str, dict] = {
    # the paper's settings, stated explicitly (= no recipe)
    "paper": dict(),
    # reach 99.0% test accuracy soonest: a tiny BN CNN, one epoch of one-cycle at a high LR, label smoothing
    "fast": dict(model="fast_cnn", epochs=1, batch_size=128, lr=1e-2, schedule="onecycle", warmup=0.25,
                 label_smoothing=0.1),
    # reach 99.5% within 3 min on 2 cores: the tiny BN CNN for 8 epochs (about 20 s each), mild augmentation
    "fast_plus": dict(model="fast_cnn", epochs=8, batch_size=128, lr=1e-2, schedule="onecycle", warmup=0.25,
                      label_smoothing=0.1, rotation=5.0, shift=2.0),
    # the paper's exact architecture, trained better: augmentation, one-cycle, label smoothing, EMA
    "paper_plus": dict(model="paper_cnn", epochs=15, batch_size=128, lr=3e-3, schedule="onecycle", warmup=0.2,
                       label_smoothing=0.1, ema=0.999, **AUGMENT),
    # best single-model accuracy measured within 30 min of 2-core CPU: the wide tiny BN CNN, 30 epochs,
    # augmentation, one-cycle, label smoothing, EMA (99.66% in 18 min; docs/training.md)
    "best": dict(model="fast_cnn_wide", epochs=30, batch_size=128, lr=1e-2, schedule="onecycle", warmup=0.2,
                 label_smoothing=0.1, ema=0.999, **AUGMENT),
}


def resolve(recipe: str | None = None, **overrides) -> TrainConfig:
    """TrainConfig defaults, then the named recipe's settings, then `overrides` (None values ignored)."""
    settings: dict = {}
    if recipe:
        if recipe not in RECIPES:
            raise DigitrecError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
        settings.update(RECIPES[recipe], recipe=recipe)
    names = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise DigitrecError(f"unknown training settings: {', '.join(sorted(unknown))}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**settings).check()
