"""The `digitrec` command line: one subcommand per job, each a thin layer over the Python API.

Errors a user can fix (DigitrecError) are printed as one clear message with exit
status 2, never a traceback. Heavy modules (torch, onnxruntime) are imported
inside the subcommand that needs them, so `digitrec --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from .errors import DigitrecError


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from .config import TrainConfig

    defaults = TrainConfig()
    help_text = {
        "model": "model name from the registry", "epochs": "number of epochs",
        "batch_size": "batch size", "lr": "Adam learning rate",
        "val_split": "validation images held out of train (0 = validate on test, as the paper)",
        "limit": "use only the first N training (and test) images", "seed": "random seed",
        "threads": "torch threads (0 = all cores)", "data_dir": "folder with the MNIST files",
        "weight_decay": "decoupled weight decay",
    }
    for f in fields(TrainConfig):
        if f.name in help_text:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)) if f.name != "data_dir" else str,
                           default=None, help=f"{help_text[f.name]} (default: {getattr(defaults, f.name)})")


def _config_from_args(args):
    from .config import TrainConfig

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    return TrainConfig(**given)


def cmd_train(args) -> int:
    from .train import fit, new_run_dir

    cfg = _config_from_args(args)
    if args.resume and not args.out:
        raise DigitrecError("--resume needs --out RUN_DIR, the run to continue")
    out = Path(args.out) if args.out else new_run_dir("runs", cfg.model)
    best = fit(cfg, out, resume=args.resume)
    if not args.no_report:
        _evaluate(best, out, dataset=None, data_dir=cfg.data_dir, limit=cfg.limit)
    return 0


def _evaluate(ckpt_path: Path, out: Path, dataset, data_dir, limit: int) -> dict:
    from . import checkpoint, report
    from .evaluation import classification_text, evaluate_checkpoint

    ckpt = checkpoint.load(ckpt_path)
    cfg = ckpt["config"]
    ev = evaluate_checkpoint(ckpt_path, dataset or cfg.get("dataset", "mnist"),
                             data_dir or cfg.get("data_dir"), limit)
    page = report.write(out, ev.metrics, ev.images, ev.labels, ev.probs, ckpt.get("history", []),
                        cfg, classification_text(ev.labels, ev.preds))
    print(classification_text(ev.labels, ev.preds))
    print(f"test accuracy {ev.metrics['test_accuracy']:.4f} ({ev.metrics['errors']} errors in "
          f"{ev.metrics['n_test']:,}); report: {page}")
    return ev.metrics


def cmd_evaluate(args) -> int:
    ckpt = Path(args.checkpoint)
    out = Path(args.out) if args.out else ckpt.parent
    _evaluate(ckpt, out, args.dataset, args.data_dir, args.limit)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model and write its evaluation report",
                       description="Train a model (default: the paper's CNN with the paper's settings) "
                                   "and evaluate it on the test set.")
    _add_train_args(p)
    p.add_argument("--out", help="run folder (default: a new folder under runs/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-report", action="store_true", help="skip the evaluation report at the end")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint and write its report",
                       description="Score a checkpoint on a test set and write metrics.json, plots and report.html.")
    p.add_argument("checkpoint", help="a .pt checkpoint written by digitrec train")
    p.add_argument("--out", help="report folder (default: the checkpoint's folder)")
    p.add_argument("--dataset", help="test set (default: the one it was trained on)")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--limit", type=int, default=0, help="score only the first N test images")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
