"""ONNX export: a checkpoint -> one self-contained .onnx file that ONNX Runtime runs without torch.

The graph:   pixels  float32 N×1×28×28, in [0, 1], ink high (the MNIST-normalized digit,
                     as `preprocess.preprocess` returns it)
          -> (pixels - mean) / std        the checkpoint's input normalization
          -> the network                  -> logits  N×10 (uncalibrated)
          -> softmax(logits / T)          -> probs   N×10 (calibrated, temperature T)
A model trained with the "not one digit" class has 11 logits: the softmax runs over all
11 and both outputs keep the 10 digits, so its probs sum to less than 1 for a merged pair.
The batch axis is dynamic. Everything a user of the file needs travels in the model's
metadata_props under the key "digitrec" as JSON: model name, normalization, calibration
(temperature, ECE before/after), metrics, training config, and how it was made.

An ensemble file (`digitrec export A.pt B.onnx -o ens.onnx`, `average`) holds every
member's graph side by side on the same input and combines them as `ensemble.combine`
does: which digit, from all members; whether it is one digit at all, from the members
with a reject class. logits is log(probs) (an ensemble has no single temperature), and
its metadata lists each member's own. `members` takes such a file apart again.
This module imports torch; inference lives in `recognizer.py`, which does not.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import torch

from . import checkpoint

METADATA_KEY = "digitrec"
INPUT, OUTPUTS = "pixels", ("probs", "logits")
OPSET = 17


class Calibrated(torch.nn.Module):
    """pixels in [0, 1] -> (calibrated probabilities, logits), with the checkpoint's normalization."""

    def __init__(self, net: torch.nn.Module, mean: float, std: float, temperature: float):
        super().__init__()
        self.net, self.mean, self.std, self.temperature = net, float(mean), float(std), float(temperature)

    def forward(self, pixels: torch.Tensor):
        x = pixels
        if self.mean != 0.0:
            x = x - self.mean
        if self.std != 1.0:
            x = x / self.std
        logits = self.net(x)
        scaled = logits / self.temperature if self.temperature != 1.0 else logits
        return torch.softmax(scaled, dim=1)[:, :10], logits[:, :10]  # the digits (an 11th, reject, output is dropped)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def metadata(ckpt: dict, source: str | None = None) -> dict:
    """What the .onnx file says about itself (stored as JSON in metadata_props)."""
    from . import __version__

    metrics = {k: v for k, v in (ckpt.get("metrics") or {}).items()}
    return _jsonable({
        "format": "digitrec-onnx/1",
        "model": ckpt["model"],
        "model_kwargs": ckpt.get("model_kwargs", {}),
        "input": {"name": INPUT, "shape": ["N", 1, 28, 28], "range": [0.0, 1.0], "ink": "high",
                  "form": "MNIST: longer side 20 px, centre of mass at (14, 14) in 28×28"},
        "outputs": {"probs": "softmax(logits / temperature)", "logits": "uncalibrated"},
        "normalization": ckpt.get("normalization", {"mean": 0.0, "std": 1.0}),
        "calibration": ckpt.get("calibration", {"temperature": 1.0}),
        "metrics": metrics,
        "epoch": ckpt.get("epoch"),
        "config": ckpt.get("config", {}),
        "source_checkpoint": source,
        "digitrec_version": __version__,
        "torch_version": torch.__version__,
    })


def to_onnx_bytes(ckpt: dict, source: str | None = None, extra: dict | None = None) -> bytes:
    """Export a loaded checkpoint dict to ONNX; return the serialized model."""
    import onnx

    norm = ckpt.get("normalization", {"mean": 0.0, "std": 1.0})
    temperature = float(ckpt.get("calibration", {}).get("temperature", 1.0))
    wrapped = Calibrated(checkpoint.build_model(ckpt), norm["mean"], norm["std"], temperature).eval()
    example = torch.zeros(2, 1, 28, 28)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: a clean graph in ~0.2 s; the dynamo exporter gives the
        # same graph but takes ~8 s, which Recognizer.load(".pt") would pay on every start.
        torch.onnx.export(
            wrapped, (example,), buf, dynamo=False, opset_version=OPSET,
            input_names=[INPUT], output_names=list(OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *OUTPUTS)},
        )
    model = onnx.load_from_string(buf.getvalue())
    meta = metadata(ckpt, source)
    if extra:
        meta.update(_jsonable(extra))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
    model.producer_name, model.doc_string = "digitrec", f"digitrec {meta['model']}: pixels -> probs, logits"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_bytes(path) -> bytes:
    """A model file as ONNX: a .onnx file as it is, a .pt checkpoint exported."""
    from .errors import DigitrecError
    from .recognizer import is_checkpoint

    path = Path(path)
    if is_checkpoint(path):
        return to_onnx_bytes(checkpoint.load(path), source=path.name)
    if not path.is_file():
        raise DigitrecError(f"model not found: {path}")
    return path.read_bytes()


def average(members: list[bytes], names: list[str] | None = None) -> bytes:
    """One ONNX model averaging the members (each an export of ours): `ensemble.combine` as a graph.
    `names` (the members' files) go into error messages."""
    import onnx
    from onnx import compose, helper, numpy_helper
    import numpy as np

    from .ensemble import rejects
    from .errors import DigitrecError

    models = []
    for k, b in enumerate(members, start=1):
        which = f"ensemble member {k}" + (f" ({names[k - 1]})" if names else "")
        try:
            m = onnx.load_from_string(b)
        except Exception as e:
            raise DigitrecError(f"{which}: not an ONNX model ({e})") from e
        ios = ([i.name for i in m.graph.input], [o.name for o in m.graph.output])
        same_opset = not models or m.opset_import == models[0].opset_import
        if ios != ([INPUT], list(OUTPUTS)) or not same_opset:
            raise DigitrecError(f"{which}: not a digitrec export like the first member (input "
                                f"'pixels', outputs 'probs' and 'logits', the same ONNX opset expected)")
        models.append(m)
    metas = [json.loads({p.key: p.value for p in m.metadata_props}.get(METADATA_KEY, "{}")) for m in models]
    nodes, inits = [], []
    for i, m in enumerate(models):
        m = compose.add_prefix(m, f"m{i}/")
        for node in m.graph.node:
            node.input[:] = [INPUT if name == f"m{i}/{INPUT}" else name for name in node.input]
        nodes += m.graph.node
        inits += m.graph.initializer
    # each member's digit mass (1, or less for a model with a reject class) and its probs among the digits
    inits += [numpy_helper.from_array(np.array([1], np.int64), "ensemble/axis"),
              numpy_helper.from_array(np.array(1e-12, np.float32), "ensemble/eps")]
    for i in range(len(models)):
        nodes += [helper.make_node("ReduceSum", [f"m{i}/probs", "ensemble/axis"], [f"m{i}/mass"], keepdims=1),
                  helper.make_node("Max", [f"m{i}/mass", "ensemble/eps"], [f"m{i}/mass_safe"]),
                  helper.make_node("Div", [f"m{i}/probs", f"m{i}/mass_safe"], [f"m{i}/digits"])]
    rejecting = [i for i, m in enumerate(metas) if rejects(m)] or list(range(len(models)))
    inits += [numpy_helper.from_array(np.array(1.0 / len(models), np.float32), "ensemble/scale"),
              numpy_helper.from_array(np.array(1.0 / len(rejecting), np.float32), "ensemble/mass_scale")]
    nodes += [helper.make_node("Sum", [f"m{i}/digits" for i in range(len(models))], ["ensemble/digits_sum"]),
              helper.make_node("Mul", ["ensemble/digits_sum", "ensemble/scale"], ["ensemble/digits"]),
              helper.make_node("Sum", [f"m{i}/mass" for i in rejecting], ["ensemble/mass_sum"]),
              helper.make_node("Mul", ["ensemble/mass_sum", "ensemble/mass_scale"], ["ensemble/mass"]),
              helper.make_node("Mul", ["ensemble/digits", "ensemble/mass"], ["probs"]),
              helper.make_node("Log", ["probs"], ["logits"])]
    first = models[0].graph
    outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", 10]) for name in OUTPUTS]
    graph = helper.make_graph(nodes, "digitrec_ensemble", list(first.input), outputs, inits)
    model = helper.make_model(graph, opset_imports=models[0].opset_import, ir_version=models[0].ir_version)
    meta = {"format": "digitrec-onnx/1", "model": "ensemble(" + ", ".join(m.get("model", "?") for m in metas) + ")",
            "input": metas[0].get("input"),
            "outputs": {"probs": "mean of the members' calibrated probs among the ten digits, times the mean "
                                 "digit mass of the members with a reject class", "logits": "log(probs)"},
            "members": metas}
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
    model.producer_name, model.doc_string = "digitrec", f"digitrec {meta['model']}: pixels -> probs, logits"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def members(data: bytes) -> list[bytes]:
    """The members of an ensemble file (`average`), each as the standalone export it was, its own
    metadata included: the inverse of `average`, so a bundled ensemble can be rebuilt with one more
    member when the members' checkpoints are gone. A single model gives itself."""
    import onnx
    from onnx import shape_inference, utils

    model = onnx.load_from_string(data)
    meta = json.loads({p.key: p.value for p in model.metadata_props}.get(METADATA_KEY, "{}"))
    if not meta.get("members"):
        return [data]
    inferred = shape_inference.infer_shapes(model)
    out = []
    for i, info in enumerate(meta["members"]):
        prefix = f"m{i}/"
        sub = utils.Extractor(inferred).extract_model([INPUT], [prefix + name for name in OUTPUTS])
        for node in sub.graph.node:
            node.output[:] = [n.removeprefix(prefix) if n.removeprefix(prefix) in OUTPUTS else n for n in node.output]
            node.input[:] = [n.removeprefix(prefix) if n.removeprefix(prefix) in OUTPUTS else n for n in node.input]
        for o in sub.graph.output:
            o.name = o.name.removeprefix(prefix)
        del sub.metadata_props[:]
        entry = sub.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(info, sort_keys=True)
        sub.producer_name = "digitrec"
        onnx.checker.check_model(sub)
        out.append(sub.SerializeToString())
    return out


def half_weights(data: bytes) -> bytes:
    """The same ONNX model with its float32 weight tensors stored as float16, each cast back to
    float32 inside the graph (ONNX Runtime folds the casts when it loads the file, so it computes
    in float32 as before): half the file, every weight rounded to 11 significant bits."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= 16:  # weights, not constants
            name = init.name
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}/f16"))
            casts.append(helper.make_node("Cast", [f"{name}/f16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export(ckpt_path, out_path, extra: dict | None = None) -> Path:
    """Export the checkpoint at `ckpt_path` to `out_path` (written atomically); several paths
    (checkpoints or .onnx files): their ensemble, `average`."""
    from .errors import DigitrecError

    paths = list(ckpt_path) if isinstance(ckpt_path, (list, tuple)) else [ckpt_path]
    if not paths:
        raise DigitrecError("nothing to export: give a checkpoint (or several models for an ensemble)")
    out = Path(out_path)
    if out.is_dir():
        raise DigitrecError(f"{out} is a folder; give the .onnx file to write")
    if out.exists() and any(Path(p).exists() and Path(p).resolve() == out.resolve() for p in paths):
        raise DigitrecError(f"{out} is one of the models to export; give another file to write")
    if len(paths) > 1:
        data = average([onnx_bytes(p) for p in paths], [str(p) for p in paths])
    else:
        data = to_onnx_bytes(checkpoint.load(paths[0]), source=os.path.basename(str(paths[0])), extra=extra)
    tmp = out.with_name(f".{out.name}.part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as e:  # about the file asked for, not the temporary one beside it
        raise DigitrecError(f"{out}: cannot write it ({e.strerror or e})") from e
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return out
