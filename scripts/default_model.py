"""Regenerate a bundled model from checkpoints trained by `digitrec train`.

    python scripts/default_model.py CKPT --train-command "digitrec train --out runs/x"
    python scripts/default_model.py A.pt B.onnx --name ocr --train-command "..." --train-command "..."
    python scripts/default_model.py ocr.onnx#0 ocr.onnx#1 C.pt --name ocr --train-command "..." ...

writes src/digitrec/assets/NAME.onnx and NAME.json (NAME: `default`, the one-digit model, or
`ocr`, OCR's reader), with the exact training commands, the export command, and the ONNX
model's own test metrics, measured here on ONNX Runtime. Several models (.pt, or .onnx
already exported; `FILE.onnx#K` is member K of an ensemble file, `digitrec.export.members`) are
bundled as their ensemble (`digitrec.export.average`); `--half-weights`
stores the weights as float16 (`digitrec.export.half_weights`). Those two files are the only
things to replace to ship another model.

If a checkpoint carries no fitted temperature (calibration without "ece_before", as from
a run started before calibration was added), it is calibrated first, on a copy, on the
same validation split its training held out (`digitrec.train.calibrate_checkpoint`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "digitrec" / "assets"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="+", help="a .pt checkpoint; several (.pt or .onnx): an ensemble")
    ap.add_argument("--train-command", required=True, action="append",
                    help="the exact command that trained the checkpoint (once per checkpoint)")
    ap.add_argument("--name", default="default", choices=["default", "ocr"], help="which bundled model")
    ap.add_argument("--note", default="", help="anything a reader must know about how the checkpoint was made")
    ap.add_argument("--out-dir", default=str(ASSETS), help="where NAME.onnx and NAME.json go")
    ap.add_argument("--half-weights", action="store_true",
                    help="store the weights as float16 (half the file; computed in float32; export.half_weights)")
    args = ap.parse_args(argv)

    import torch

    from digitrec import checkpoint, datasets
    from digitrec.calibration import expected_calibration_error
    from digitrec.config import TrainConfig
    from digitrec.export import export, half_weights, members as ensemble_members
    from digitrec.recognizer import Recognizer
    from digitrec.train import calibrate_checkpoint, to_input

    torch.set_num_threads(1)
    if len(args.train_command) != len(args.checkpoint):
        ap.error("give one --train-command per checkpoint")
    out_dir = Path(args.out_dir)
    steps, members = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for arg in args.checkpoint:
            src = Path(arg)
            if "#" in arg:  # FILE.onnx#K: member K of an ensemble file, as the export it was
                file, _, k = arg.rpartition("#")
                parts = ensemble_members(Path(file).read_bytes())
                if not k.isdigit() or int(k) >= len(parts):
                    ap.error(f"{arg}: {file} holds members 0 to {len(parts) - 1}")
                src = Path(tmp) / f"{Path(file).stem}_member{k}.onnx"
                src.write_bytes(parts[int(k)])
                steps.append(f"digitrec.export.members({Path(file).name})[{k}] (done by this script)")
            ckpt = checkpoint.load(src) if src.suffix == ".pt" else None
            if ckpt is not None and "ece_before" not in ckpt.get("calibration", {}):
                cfg = TrainConfig.from_dict(ckpt["config"])
                name = getattr(cfg, "train_on", "") or cfg.dataset
                val = datasets.prepare(name, cfg.data_dir, cfg.val_split, cfg.limit, cfg.seed)["val"]
                work = Path(tmp) / src.name
                shutil.copy(src, work)
                calibrate_checkpoint(work, to_input(val.images, cfg.input_mean, cfg.input_std), val.labels)
                steps.append(f"calibrate_checkpoint({src.name}) on datasets.prepare({name!r}, None, "
                             f"{cfg.val_split}, {cfg.limit}, seed={cfg.seed})['val'] (done by this script)")
                src = work
            members.append(src)
        onnx_path = export(members, out_dir / f"{args.name}.onnx")
    steps.append(f"digitrec.export.export({[p.name for p in members]}, 'src/digitrec/assets/{args.name}.onnx')")
    if args.half_weights:
        onnx_path.write_bytes(half_weights(onnx_path.read_bytes()))
        steps.append(f"digitrec.export.half_weights on {args.name}.onnx (weights stored as float16)")

    r = Recognizer.load(onnx_path)
    test = datasets.load("mnist")["test"]
    probs = r.predict_normalized(test.images.numpy().astype(np.float32) / 255.0)
    labels = test.labels.numpy()
    acc = float((probs.argmax(1) == labels).mean())
    members = r.metadata.get("members") or [r.metadata]  # an ensemble: each member's own, in order
    each = (lambda key: [m.get(key) for m in members]) if len(members) > 1 else (lambda key: members[0].get(key))
    if len(members) == 1:  # one model: its ECE with and without its temperature
        pixels = test.images.numpy()[:, None].astype(np.float32) / 255.0
        logits = np.concatenate([r.session.run(["logits"], {"pixels": pixels[i:i + 1000]})[0]
                                 for i in range(0, len(pixels), 1000)])
        raw = np.exp(logits - logits.max(1, keepdims=True))
        raw /= raw.sum(1, keepdims=True)
        test_ece = {"ece_before_calibration": expected_calibration_error(raw, labels),
                    "ece_after_calibration": expected_calibration_error(probs, labels)}
    else:  # an ensemble has no temperature of its own
        test_ece = {"ece": expected_calibration_error(probs, labels)}
    info = {
        "model": r.name,
        "file": onnx_path.name,
        "bytes": onnx_path.stat().st_size,
        "train_command": args.train_command if len(args.train_command) > 1 else args.train_command[0],
        "note": args.note,
        "export_command": "python scripts/default_model.py " + " ".join(
            args.checkpoint + [x for c in args.train_command for x in ("--train-command", json.dumps(c))]
            + (["--name", args.name] if args.name != "default" else [])
            + (["--half-weights"] if args.half_weights else [])
            + (["--note", json.dumps(args.note)] if args.note else [])),
        "export_steps": steps,
        "checkpoint_epoch": each("epoch"),
        "checkpoint_metrics": each("metrics"),
        "calibration": each("calibration"),
        "onnx_test": {"dataset": "mnist test (10,000)", "accuracy": acc,
                      "errors": int((probs.argmax(1) != labels).sum()), **test_ece},
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out_dir / f"{args.name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
