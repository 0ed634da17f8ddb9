"""Per model of the registry: parameters, MFLOPs per image, training time and test accuracy.

Every model is trained with the same recipe (default: `fast`, whose settings are applied
to each model; --recipe/--epochs/--limit to change), the checkpoint chosen on validation,
then scored on the MNIST test set.

  nice python benchmarks/models.py --epochs 1
writes benchmarks/results/models.json and .md.
"""

from __future__ import annotations

import argparse
import tempfile

from common import command, machine, write

from digitrec.evaluation import evaluate_checkpoint
from digitrec.models import REGISTRY, count_parameters, create_model, flops_per_image
from digitrec.recipes import resolve
from digitrec.train import fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(REGISTRY))
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="override the recipe's learning rate")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-train", action="store_true", help="parameters and MFLOPs only")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    rows = []
    for name in a.models.split(","):
        model = create_model(name)
        row = {"model": name, "parameters": count_parameters(model), "mflops": flops_per_image(model) / 1e6}
        if not a.no_train:
            cfg = resolve(a.recipe, model=name, epochs=a.epochs, lr=a.lr, limit=a.limit, threads=a.threads or None)
            with tempfile.TemporaryDirectory() as tmp:
                best = fit(cfg, tmp)
                ev = evaluate_checkpoint(best, limit=a.limit)
                import torch
                hist = torch.load(best.parent / "last.pt", weights_only=True)["history"]  # every epoch
            row.update(recipe=a.recipe, epochs=cfg.epochs, train_seconds=sum(h["epoch_time"] for h in hist),
                       images_per_s=hist[-1]["images_per_s"], selected_epoch=ev.metrics["epochs"],
                       test_accuracy=ev.metrics["test_accuracy"])
        rows.append(row)
        print(row, flush=True)

    record = {"benchmark": "models", "command": command(), **machine(), "models": rows}
    md = ["# Models", "", f"Command: `{record['command']}`  ",
          f"{record['machine']}, torch {record['torch']}, load average {record['load_average'][0]:.1f} "
          "at the end (shared CPU)", "",
          "| model | parameters | MFLOPs/image | recipe, epochs | training s | img/s | test accuracy |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        trained = (f"{r['recipe']}, {r['epochs']} | {r['train_seconds']:.0f} | {r['images_per_s']:.0f} | "
                   f"{r['test_accuracy']:.4f}") if "test_accuracy" in r else "not trained | | |"
        md.append(f"| {r['model']} | {r['parameters']:,} | {r['mflops']:.2f} | {trained} |")
    write("models", record, md, a.out)


if __name__ == "__main__":
    main()
