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

import os
import zipfile
from pathlib import Path

import torch

from .errors import DigitrecError
from .models import create_model

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
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's own message can run to a page: its first sentence says what failed
        reason = (str(e).strip().split("\n")[0].split(". ")[0] if zipfile.is_zipfile(path)
                  else "not a whole file written by torch.save: cut short, or another kind of file")
        raise DigitrecError(f"{path}: not a readable digitrec checkpoint ({reason})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DigitrecError(f"{path}: not a digitrec checkpoint (format {FORMAT} expected)")
    return ckpt


def build_model(ckpt: dict) -> torch.nn.Module:
    """The checkpoint's model with its weights, in eval mode."""
    model = create_model(ckpt["model"], **ckpt.get("model_kwargs", {}))
    model.load_state_dict(ckpt["weights"])
    return model.eval()


def slim(ckpt: dict) -> dict:
    """The checkpoint without training state (optimizer, RNG, live weights under EMA): what inference needs."""
    return {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng", "train_state", "format")}
