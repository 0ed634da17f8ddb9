"""Time to accuracy: training wall seconds until MNIST test accuracy first reaches 99.0% and 99.5%.

For each recipe, trains with digitrec's trainer (checkpoints chosen on validation as
always) and, after every epoch, scores the test set for this benchmark only. Reported:
cumulative training seconds (the epochs' training passes) and total wall seconds since
the start of `fit` (including data loading and the per-epoch validation and test passes)
at the first epoch whose test accuracy reaches each target.

  nice python benchmarks/time_to_accuracy.py --recipes fast
writes benchmarks/results/time_to_accuracy.json and .md.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from common import command, machine, test_monitor, write

from digitrec.recipes import resolve
from digitrec.train import fit

TARGETS = (0.99, 0.995)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="fast", help="comma-separated recipe names")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    runs = []
    for name in a.recipes.split(","):
        cfg = resolve(name, epochs=a.epochs, threads=a.threads or None)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            wall = []

            def on_epoch(row, model, monitor=test_monitor()):
                out = monitor(row, model)
                wall.append(time.perf_counter() - t0)
                return out

            best = fit(cfg, tmp, on_epoch=on_epoch)
            import torch
            history = torch.load(best.parent / "last.pt", weights_only=True)["history"]  # every epoch
        train_s, reached = 0.0, {}
        for row, w in zip(history, wall):
            train_s += row["epoch_time"]
            for t in TARGETS:
                if t not in reached and row["test_acc"] >= t:
                    reached[t] = {"epoch": row["epoch"], "train_seconds": train_s, "wall_seconds": w}
        runs.append({"recipe": name, "config": cfg.to_dict(), "history": history,
                     "reached": {str(t): reached.get(t) for t in TARGETS},
                     "final_test_acc": history[-1]["test_acc"],
                     "selected_epoch_test_acc": max(history, key=lambda r: r["val_acc"])["test_acc"]})

    record = {"benchmark": "time_to_accuracy", "command": command(), **machine(), "runs": runs}
    md = ["# Time to accuracy (MNIST test set)", "", f"Command: `{record['command']}`  ",
          f"{record['machine']}, torch {record['torch']}, load average {record['load_average'][0]:.1f} "
          "at the end (shared CPU)", "",
          "| recipe | model | epochs | batch | 99.0%: train s (wall s, epoch) | 99.5%: train s (wall s, epoch) "
          "| final test acc | val-chosen epoch: test acc |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        cells = []
        for t in TARGETS:
            x = r["reached"][str(t)]
            cells.append(f"{x['train_seconds']:.1f} ({x['wall_seconds']:.1f}, {x['epoch']})" if x else "not reached")
        c = r["config"]
        md.append(f"| {r['recipe']} | {c['model']} | {c['epochs']} | {c['batch_size']} | {cells[0]} | {cells[1]} "
                  f"| {r['final_test_acc']:.4f} | {r['selected_epoch_test_acc']:.4f} |")
    write("time_to_accuracy", record, md, a.out)


if __name__ == "__main__":
    main()
