"""How much an ensemble's test errors depend on which members it happens to have.

    python benchmarks/ensemble_spread.py A.pt B.pt ... [--sizes 5,10] [--draws 2000] [--goal 25]

Each member's calibrated probabilities on MNIST test are computed once; then, for each size k,
`--draws` ensembles of k members drawn at random without replacement from those given (and, for
all of them, a bootstrap: as many members drawn with replacement) are scored as `digitrec
ensemble` scores one (`ensemble.combine`). It reports the errors of the ensemble of all members
and, per size, the median errors, the 5th-95th percentile range and the share of draws at or
under `--goal` errors. A pool whose draws straddle the goal meets it or not by which seeds
were trained, not by its recipe. Writes benchmarks/results/ensemble_spread.{json,md} (or `--out`).
Not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, machine, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("members", nargs="+", help=".pt checkpoints or .onnx exports")
    ap.add_argument("--sizes", default="5,10", help="ensemble sizes to draw without replacement (comma-separated)")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--goal", type=int, default=25, help="errors of the goal (99.75%% of 10,000: 25)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="output path without suffix (default: benchmarks/results/ensemble_spread)")
    args = ap.parse_args()
    missing = [m for m in args.members if not Path(m).exists()]
    if missing:  # a glob the shell found nothing for arrives as it was typed
        ap.error(f"no such model file: {missing[0]}")

    from digitrec import datasets
    from digitrec.ensemble import combine, member_probs, rejects
    from digitrec.evaluation import load_scorer

    test = datasets.load("mnist")["test"]
    labels = test.labels.numpy()
    probs, rejecting, member_errors = [], [], []
    with torch.inference_mode():
        for path in args.members:
            probs_of, info = load_scorer(path)
            probs.append(member_probs(probs_of, test.images))
            rejecting.append(rejects(info))
            member_errors.append(int((probs[-1].argmax(1).numpy() != labels).sum()))
            print(f"{path}: {member_errors[-1]} errors", flush=True)

    def errors(idx) -> int:
        return int((combine([probs[i] for i in idx], [rejecting[i] for i in idx]).argmax(1).numpy() != labels).sum())

    n = len(probs)
    rng = np.random.default_rng(args.seed)
    rows = []
    for k, replace in [(int(s), False) for s in args.sizes.split(",") if 0 < int(s) < n] + [(n, True)]:
        e = np.array([errors(rng.choice(n, k, replace=replace)) for _ in range(args.draws)])
        rows.append(dict(size=k, replacement=replace, draws=args.draws, median=float(np.median(e)),
                         p5=float(np.percentile(e, 5)), p95=float(np.percentile(e, 95)),
                         share_at_goal=float((e <= args.goal).mean())))
    record = dict(benchmark="ensemble_spread", command=command(), members=args.members, goal=args.goal,
                  member_errors=member_errors,
                  all_members_errors=errors(range(n)), rows=rows, **machine())
    md = [f"# Ensemble spread: {n} members, MNIST test", "", f"`{record['command']}`", "",
          f"Members' errors: {', '.join(map(str, record['member_errors']))}. "
          f"The ensemble of all {n}: **{record['all_members_errors']} errors**.", "",
          f"| members drawn | draws | median errors | 5th-95th percentile | share at or under {args.goal} |",
          "| --- | --- | --- | --- | --- |"]
    for r in rows:
        how = f"{r['size']} with replacement (bootstrap)" if r["replacement"] else f"{r['size']} of {n}"
        md.append(f"| {how} | {r['draws']} | {r['median']:.0f} | {r['p5']:.0f}-{r['p95']:.0f} | {r['share_at_goal']:.0%} |")
    write("ensemble_spread", record, md, args.out)


if __name__ == "__main__":
    main()
