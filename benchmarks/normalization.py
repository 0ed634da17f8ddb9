"""How USPS, Semeion and optdigits digits are brought to 28×28 decides much of an MNIST model's
accuracy on them: score a checkpoint on each test set under each normalization.

    python benchmarks/normalization.py CKPT [CKPT...] [--out benchmarks/results/normalization.json]

mnist    = preprocess.normalize_digit (ink box to 20 px, centred by mass; what the loaders use)
resize28 = the whole frame resized to 28×28
pad20    = the whole frame resized to 20×20 and padded to 28×28
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from digitrec import checkpoint, handwriting
from digitrec.train import predict_logits, to_input


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--datasets", default="usps,semeion,optdigits")
    ap.add_argument("--out", default="benchmarks/results/normalization.json")
    args = ap.parse_args()
    names = args.datasets.split(",")
    results = []
    for norm in handwriting.NORMALIZATIONS:
        tests = {n: handwriting.LOADERS[n](normalization=norm)["test"] for n in names}
        for path in args.checkpoints:
            ckpt = checkpoint.load(path)
            model = checkpoint.build_model(ckpt)
            m = ckpt["normalization"]
            row = {"checkpoint": path, "model": ckpt["model"], "normalization": norm}
            for n, (images, labels) in tests.items():
                x = to_input(torch.from_numpy(images), m["mean"], m["std"])
                preds = predict_logits(model, x).argmax(1).numpy()
                row[n] = float((preds == labels).mean())
            results.append(row)
            print(f"{norm:9} {ckpt['model']:12} " + "  ".join(f"{n} {row[n]:.4f}" for n in names), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
