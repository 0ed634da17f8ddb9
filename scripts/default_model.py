"""Regenerate the bundled default model from a checkpoint trained by `digitrec train`.

    python scripts/default_model.py CKPT --train-command "digitrec train --out runs/x"

writes src/digitrec/assets/default.onnx and src/digitrec/assets/default.json (the exact
training command, the export command, and the ONNX model's own test metrics, measured
here on ONNX Runtime). Those two files are the only things to replace to ship another model.

If the checkpoint carries no fitted temperature (calibration without "ece_before", as from
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
    ap.add_argument("checkpoint")
    ap.add_argument("--train-command", required=True, help="the exact command that trained the checkpoint")
    ap.add_argument("--note", default="", help="anything a reader must know about how the checkpoint was made")
    ap.add_argument("--out-dir", default=str(ASSETS), help="where default.onnx and default.json go")
    args = ap.parse_args(argv)

    import torch

    from digitrec import checkpoint, datasets
    from digitrec.calibration import expected_calibration_error
    from digitrec.config import TrainConfig
    from digitrec.export import export
    from digitrec.recognizer import Recognizer
    from digitrec.train import calibrate_checkpoint, to_input

    torch.set_num_threads(1)
    src = Path(args.checkpoint)
    ckpt = checkpoint.load(src)
    steps = []
    with tempfile.TemporaryDirectory() as tmp:
        if "ece_before" not in ckpt.get("calibration", {}):
            cfg = TrainConfig.from_dict(ckpt["config"])
            name = getattr(cfg, "train_on", "") or cfg.dataset
            val = datasets.prepare(name, cfg.data_dir, cfg.val_split, cfg.limit, cfg.seed)["val"]
            work = Path(tmp) / src.name
            shutil.copy(src, work)
            calibrate_checkpoint(work, to_input(val.images, cfg.input_mean, cfg.input_std), val.labels)
            steps.append(f"calibrate_checkpoint on datasets.prepare({name!r}, None, {cfg.val_split}, "
                         f"{cfg.limit}, seed={cfg.seed})['val'] (done by this script)")
            src_for_export = work
        else:
            src_for_export = src
        out_dir = Path(args.out_dir)
        onnx_path = export(src_for_export, out_dir / "default.onnx")

    r = Recognizer.load(onnx_path)
    test = datasets.load("mnist")["test"]
    probs = r.predict_normalized(test.images.numpy().astype(np.float32) / 255.0)
    labels = test.labels.numpy()
    pixels = test.images.numpy()[:, None].astype(np.float32) / 255.0
    logits = np.concatenate([r.session.run(["logits"], {"pixels": pixels[i:i + 1000]})[0]
                             for i in range(0, len(pixels), 1000)])
    raw = np.exp(logits - logits.max(1, keepdims=True))
    raw /= raw.sum(1, keepdims=True)
    acc = float((probs.argmax(1) == labels).mean())
    info = {
        "model": r.name,
        "file": "default.onnx",
        "bytes": onnx_path.stat().st_size,
        "train_command": args.train_command,
        "note": args.note,
        "export_command": "python scripts/default_model.py " + " ".join(
            [str(args.checkpoint), "--train-command", json.dumps(args.train_command)]
            + (["--note", json.dumps(args.note)] if args.note else [])),
        "export_steps": steps + ["digitrec.export.export(checkpoint, 'src/digitrec/assets/default.onnx')"],
        "checkpoint_epoch": r.metadata.get("epoch"),
        "checkpoint_metrics": r.metadata.get("metrics"),
        "calibration": r.metadata.get("calibration"),
        "onnx_test": {"dataset": "mnist test (10,000)", "accuracy": acc,
                      "errors": int((probs.argmax(1) != labels).sum()),
                      "ece_before_calibration": expected_calibration_error(raw, labels),
                      "ece_after_calibration": expected_calibration_error(probs, labels)},
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out_dir / "default.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
