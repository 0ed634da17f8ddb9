"""The recognizer: a loaded model that turns images of one digit into calibrated answers.

`Recognizer.load(path)` opens an ONNX model (a bundled one, or one written by
`digitrec export`) on ONNX Runtime; torch is never imported for .onnx files. A .pt
checkpoint is also accepted: it is exported to ONNX in memory first (that case imports torch).
Two models are bundled: `default.onnx` (the paper's CNN: `predict`, `serve`, the drawing
page) and `ocr.onnx` (OCR's reader: stronger and slower; OCR reads dozens of candidate crops
per image, and a number is right only if all its digits are). `read` on the bundled default
reads with the bundled OCR model, loaded on first use; on any other model, with that model.
Answers abstain: a blank image is 'no_digit', a best guess below `min_confidence` is
'uncertain'. One instance is safe to share between threads (ONNX Runtime sessions are; the
only state, the OCR model loaded on first use, at worst loads twice). Training and
evaluation live elsewhere.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DigitrecError, ImageError
from .preprocess import preprocess

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_MODEL = ASSETS / "default.onnx"   # one digit: predict, serve, the drawing page
OCR_MODEL = ASSETS / "ocr.onnx"           # OCR's reader (assets/ocr.json says what it is)
CHUNK = 1024  # images per ONNX Runtime call in predict_normalized


def is_checkpoint(path) -> bool:
    """Whether a model file is a training checkpoint (`.pt`, any case; torch.save writes a zip archive)
    rather than an ONNX export (protobuf), whatever its name ends with."""
    p = Path(path)
    return p.suffix.lower() == ".pt" or (p.is_file() and zipfile.is_zipfile(p))


@dataclass
class Prediction:
    """One answer. `label` is None only for 'no_digit'; for 'uncertain' it is the best guess."""

    status: str                      # 'ok' | 'no_digit' | 'uncertain'
    label: int | None
    probability: float               # calibrated probability of `label` (0.0 for no_digit)
    probs: list[float] = field(default_factory=list)   # the 10 class probabilities ([] for no_digit)
    top_k: list[list] = field(default_factory=list)    # [[label, probability], ...], best first
    normalized: np.ndarray | None = field(default=None, repr=False)  # the 28×28 the model saw

    @property
    def not_one_digit(self) -> float:
        """The probability that the image is not one digit (two or more, or a piece of one): what a
        model with a "not one digit" class (`digitrec train --reject`, the bundled ones) leaves out
        of the ten digits' probabilities. 0 for other models and for 'no_digit'."""
        return round(max(0.0, 1.0 - float(sum(self.probs))), 6) if self.probs else 0.0

    def to_dict(self, top_k: int = 3) -> dict:
        if not 1 <= top_k <= 10:
            raise ValueError(f"top_k must be between 1 and 10, not {top_k}")
        return {"status": self.status, "label": self.label, "probability": self.probability,
                "top_k": [list(t) for t in self.top_k[:top_k]], "not_one_digit": self.not_one_digit}


def _as_normalized(x) -> np.ndarray | None:
    """A 28×28 array (floats in [0,1], or 0-255 grey levels, ink high) taken as MNIST-normalized, else None."""
    if isinstance(x, np.ndarray) and x.shape in ((28, 28), (28, 28, 1)):
        if x.dtype.kind not in "buif":
            raise ImageError(f"an image array must hold numbers, not {x.dtype} values")
        x = x.reshape(28, 28)
        a = x.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError("the 28×28 array holds NaN or infinite values")
        if x.dtype == np.uint8 or a.max() > 1.0:  # 0-255 grey levels
            a /= 255.0
        return np.clip(a, 0.0, 1.0)
    return None


class Recognizer:
    """A model on ONNX Runtime, with the preprocessing and abstaining rules around it."""

    def __init__(self, model_bytes_or_path, metadata: dict | None = None, min_confidence: float = 0.6,
                 threads: int = 1, source: str | None = None):
        import onnxruntime as ort

        if not 0.0 <= min_confidence <= 1.0:
            raise DigitrecError(f"the minimum confidence (--min-confidence) must be between 0 and 1, "
                                f"not {min_confidence}")
        if int(threads) < 1:
            raise DigitrecError(f"threads must be at least 1, not {threads}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model_bytes_or_path, sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            raise DigitrecError(f"{source or 'model'}: not a loadable ONNX model ({e})") from e
        names = [i.name for i in self.session.get_inputs()]
        outs = [o.name for o in self.session.get_outputs()]
        if names != ["pixels"] or "probs" not in outs:
            raise DigitrecError(f"{source or 'model'}: not a digitrec model (input 'pixels' and output "
                                f"'probs' expected; found inputs {names}, outputs {outs})")
        try:  # one blank digit through it: ten probabilities per image, or it is another kind of model
            shape = self.session.run(["probs"], {"pixels": np.zeros((1, 1, 28, 28), np.float32)})[0].shape
        except Exception as e:
            raise DigitrecError(f"{source or 'model'}: not a digitrec model (it fails on a 1×1×28×28 input: {e})") from e
        if shape != (1, 10):
            raise DigitrecError(f"{source or 'model'}: not a digitrec model (10 digit probabilities per image "
                                f"expected; it gives shape {list(shape)} for one image)")
        if metadata is None:
            raw = self.session.get_modelmeta().custom_metadata_map.get("digitrec", "{}")
            try:
                metadata = json.loads(raw)
            except ValueError:
                metadata = {}
        self.metadata = metadata
        self.name = metadata.get("model", "unknown")
        self.min_confidence = float(min_confidence)
        self.source = source
        self.threads = max(1, int(threads))
        self._ocr: Recognizer | None = None

    @classmethod
    def load(cls, path=None, min_confidence: float = 0.6, threads: int = 1, ocr: bool = False) -> "Recognizer":
        """path None -> the bundled default model (with ocr=True: the bundled OCR model);
        a .onnx from `digitrec export`; or a .pt checkpoint."""
        path = Path(path) if path is not None else (OCR_MODEL if ocr else DEFAULT_MODEL)
        if not path.is_file():
            hint = (" (a bundled model is missing; reinstall digitrec or regenerate it with "
                    "`make default-model`)" if path in (DEFAULT_MODEL, OCR_MODEL) else "")
            raise DigitrecError(f"model not found: {path}{hint}")
        if is_checkpoint(path):
            try:
                from .export import onnx_bytes
            except ModuleNotFoundError as e:
                raise DigitrecError(f"{path} is a training checkpoint; reading it needs {e.name} (pip install "
                                    "'digitrec[train]'), or give its export: digitrec export CKPT -o model.onnx") from e
            data = onnx_bytes(path)
        else:
            data = path.read_bytes()
        return cls(data, None, min_confidence, threads, source=str(path))

    # -- inference ------------------------------------------------------------------------
    def predict_normalized(self, batch) -> np.ndarray:
        """N×28×28 (or N×1×28×28) float32 in [0, 1], MNIST form -> N×10 calibrated probabilities."""
        x = np.asarray(batch, dtype=np.float32)
        if x.size == 0:
            return np.zeros((0, 10), np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise DigitrecError(f"predict_normalized needs N×28×28 images, got shape {np.shape(batch)}")
        if not np.isfinite(x).all():
            raise DigitrecError("predict_normalized got NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise DigitrecError("predict_normalized needs values in [0, 1] (MNIST form; divide 0-255 levels "
                                f"by 255), got {x.min():g} to {x.max():g}")
        x = np.ascontiguousarray(x)
        parts = [self.session.run(["probs"], {"pixels": x[i:i + CHUNK]})[0] for i in range(0, len(x), CHUNK)]
        return np.concatenate(parts)

    def predictions(self, normalized: list) -> list[Prediction]:
        """Predictions for already-normalized 28×28 arrays (None = no ink), in one batched call."""
        idx = [i for i, n in enumerate(normalized) if n is not None and float(np.max(n)) > 0.05]
        probs = self.predict_normalized(np.stack([normalized[i] for i in idx])) if idx else None
        out = [Prediction("no_digit", None, 0.0, normalized=normalized[i]) for i in range(len(normalized))]
        for row, i in enumerate(idx):
            out[i] = self._answer(probs[row], normalized[i])
        return out

    def _answer(self, p: np.ndarray, normalized: np.ndarray) -> Prediction:
        order = np.argsort(-p)
        label, prob = int(order[0]), float(p[order[0]])
        status = "ok" if prob >= self.min_confidence else "uncertain"
        return Prediction(status, label, prob, [float(v) for v in p],
                          [[int(k), float(p[k])] for k in order], normalized)

    def normalize(self, x) -> np.ndarray | None:
        """The 28×28 the model sees for `x` (None when blank); raises ImageError for bad images."""
        n = _as_normalized(x)
        return n if n is not None else preprocess(x)

    def predict(self, x) -> Prediction:
        """x: a path, bytes, file object, PIL image or array. A 28×28 array is taken as MNIST-normalized."""
        return self.predictions([self.normalize(x)])[0]

    def predict_batch(self, items) -> list[Prediction]:
        """Predictions for many inputs, one network call; the first bad image raises ImageError."""
        if isinstance(items, (str, bytes, Path)):  # one input, not a list of its characters
            raise DigitrecError("predict_batch takes a list of inputs; use predict for one")
        return self.predictions([self.normalize(x) for x in items])

    def ocr_reader(self) -> "Recognizer":
        """The recognizer OCR reads with: the bundled OCR model if this is the bundled default
        (loaded once, on first use), else this one."""
        if Path(self.source).resolve() != DEFAULT_MODEL.resolve():  # also when named by another path
            return self
        if self._ocr is None:
            self._ocr = Recognizer.load(OCR_MODEL, self.min_confidence, self.threads)
        return self._ocr

    def read(self, image, deadline: float | None = None):
        """OCR: the numbers written in `image`, line by line (see `digitrec.ocr.read`; past
        `deadline`, a time.monotonic() value, a TimeoutError)."""
        from .ocr import read

        return read(self.ocr_reader(), image, deadline=deadline)

    def __repr__(self) -> str:
        return f"Recognizer({self.name!r}, source={self.source!r}, min_confidence={self.min_confidence})"

