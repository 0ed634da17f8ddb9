"""Self-describing checkpoints: everything needed to use a model travels with its weights.

A checkpoint is a plain dict saved with `torch.save` and loaded with
`weights_only=True` (no pickled code runs on load). Keys:
  format        "digitrec-checkpoint/1"
  model         registry name; model_kwargs its constructor arguments
  weights       the state_dict
  config        the resolved TrainConfig as a dict
  normalization {"mean", "std"}: input = (pixels / 255 - mean) / std, ink high, 28×28
  calibration   {"temperature"}: probabilities = softmax(logits / temperature)
  metrics       the latest epoch's figures; history, every epoch's
  epoch         epochs completed
  optimizer, rng, train_state  training state for --resume (absent from slim, shipped files)
Writes are atomic (temporary file, then rename), so an interrupted save never
leaves a half-written checkpoint.
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from pathlib import Path

import torch

from .errors import DigitrecError
from .models import REGISTRY, create_model

FORMAT = "digitrec-checkpoint/1"


def save(path, ckpt: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")  # opened as usual: the umask's mode, not 0600
    try:
        torch.save({**ckpt, "format": FORMAT}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DigitrecError(f"checkpoint not found: {path}")
    if path.suffix.lower() == ".onnx":
        raise DigitrecError(f"{path} is an exported ONNX model, not a training checkpoint: this needs the .pt "
                            "that digitrec train wrote (predict, ocr, serve, evaluate and ensemble take .onnx files)")
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle before refusing it: the error says it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's own message can run to a page: its first sentence says what failed
        reason = (str(e).strip().split("\n")[0].split(". ")[0] if zipfile.is_zipfile(path)
                  else "not a whole file written by torch.save: cut short, or another kind of file")
        raise DigitrecError(f"{path}: not a readable digitrec checkpoint ({reason})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DigitrecError(f"{path}: not a digitrec checkpoint (format {FORMAT} expected)")
    problem = _unusable(ckpt)
    if problem:
        raise DigitrecError(f"{path}: not a usable digitrec checkpoint ({problem})")
    try:
        build_model(ckpt)  # its weights fit its model: fail here, naming the file, not later
    except DigitrecError as e:
        raise DigitrecError(f"{path}: {e}") from e.__cause__
    return ckpt


def _unusable(ckpt: dict) -> str | None:
    """What keeps a checkpoint dict from being used (None if nothing): missing or malformed keys,
    a model the registry lacks, weights that are not finite, a normalization or temperature out of range."""
    if ckpt.get("model") not in REGISTRY:
        return f"unknown model {ckpt.get('model')!r}; known: {', '.join(sorted(REGISTRY))}"
    weights = ckpt.get("weights")
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        return "no weights"
    if not all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point()):
        return "its weights hold NaN or infinite values"
    if not isinstance(ckpt.get("model_kwargs", {}), dict):
        return "model_kwargs is not a dict"
    norm = ckpt.get("normalization")
    if not (isinstance(norm, dict) and all(isinstance(norm.get(k), (int, float)) and math.isfinite(norm[k])
                                           for k in ("mean", "std")) and norm["std"] > 0):
        return "no input normalization (mean and a positive std)"
    t = (ckpt.get("calibration") or {}).get("temperature", 1.0)
    if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        return f"calibration temperature {t!r} is not a positive number"
    return None


def build_model(ckpt: dict) -> torch.nn.Module:
    """The checkpoint's model with its weights, in eval mode."""
    try:
        model = create_model(ckpt["model"], **ckpt.get("model_kwargs", {}))
        model.load_state_dict(ckpt["weights"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # settings or weights of another model
        reason = str(e).strip().split("\n")[0].rstrip(":. \t")
        raise DigitrecError(f"not a usable digitrec checkpoint (its weights and settings do not fit model "
                            f"{ckpt.get('model')!r}: {reason})") from e
    return model.eval()


def slim(ckpt: dict) -> dict:
    """The checkpoint without training state (optimizer, RNG, live weights under EMA): what inference needs."""
    return {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng", "train_state", "format")}
