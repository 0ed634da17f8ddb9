"""The `digitrec` command line: one subcommand per job, each a thin layer over the Python API.

Errors a user can fix (DigitrecError) are printed as one clear message with exit
status 2, never a traceback. Heavy modules (torch, onnxruntime) are imported
inside the subcommand that needs them, so `digitrec --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields, replace
from pathlib import Path

from .errors import DigitrecError

TRAIN_EXTRA = ("torch", "onnx", "onnxscript")  # `pip install digitrec[train]`: not needed by predict, ocr, serve


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from .config import TrainConfig

    defaults = TrainConfig()
    help_text = {
        "model": "model name from the registry", "epochs": "number of epochs",
        "batch_size": "batch size", "lr": "Adam learning rate",
        "val_split": "validation images held out of train (0 = validate on test, as the paper)",
        "limit": "use only the first N training (and test) images of each dataset", "seed": "random seed",
        "threads": "torch threads (0 = all cores)", "data_dir": "folder with the MNIST files",
        "weight_decay": "decoupled weight decay",
        "dataset": "training data: mnist, usps, semeion, optdigits, a folder root/<digit>/*.png or a .csv",
        "train_on": "a mixture instead of --dataset, e.g. mnist,usps:3,optdigits (NAME[:WEIGHT])",
        "schedule": "LR schedule: constant, onecycle, cosine, exponential",
        "warmup": "onecycle/cosine warm-up fraction", "lr_decay": "exponential: LR factor per epoch",
        "label_smoothing": "label smoothing", "ema": "EMA decay of the weights (0 = off)",
        "rotation": "augmentation: max rotation (degrees)", "shift": "augmentation: max shift (pixels)",
        "zoom": "augmentation: max relative zoom", "elastic": "augmentation: elastic scale (pixels, 0 = off)",
        "stroke": "augmentation: max pen-width change, 0..1 (0 = off)",
        "thin": "augmentation: max pen thinning instead, 0..1 (-1 = as --stroke)",
        "reject": "share of each batch made of touching pairs, an 11th 'not one digit' class (0 = off)",
        "ocr_lines": "add OCR's cuts of this many synthetic lines of training digits (needs --reject)",
        "deskew": "straighten each digit's slant first, inside the model (yes/no)",
        "teacher": "distil from these checkpoints (comma-separated, globs; e.g. 'runs/p*/best.pt')",
        "teacher_weight": "share of the loss on the teachers' soft targets",
        "teacher_temperature": "softmax temperature of the distillation",
        "channels_last": "NHWC convolutions (yes/no)", "fused_adam": "fused Adam kernel (yes/no)",
        "precision": "forward pass: fp32, or bf16 (faster on CPUs with AMX or AVX512-BF16)",
    }
    for f in fields(TrainConfig):
        if f.name in help_text:
            kind = type(getattr(defaults, f.name)) if f.name != "data_dir" else str
            p.add_argument("--" + f.name.replace("_", "-"), type=_yes_no if kind is bool else kind,
                           default=None, help=f"{help_text[f.name]} (default: {getattr(defaults, f.name)})")
    p.add_argument("--recipe", help="named recipe (fast, fast_plus, paper_plus, best, paper); other flags override it")


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1", "on"):
        return True
    if text.lower() in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _config_from_args(args):
    from .config import TrainConfig

    from .recipes import resolve

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    return resolve(given.pop("recipe", None), **given)


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .train import fit, new_run_dir

    cfg = _config_from_args(args)
    if args.resume and not args.out:
        raise DigitrecError("--resume needs --out RUN_DIR, the run to continue")
    saved = Path(args.out or "") / "config.json"
    if args.resume and args.epochs is None and saved.is_file():  # the run's own length, unless --epochs says
        cfg = replace(cfg, epochs=json.loads(saved.read_text())["epochs"])
    out = Path(args.out) if args.out else new_run_dir("runs", cfg.model)
    best = fit(cfg, out, resume=args.resume)
    cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))  # as trained (resumed: as saved)
    if not args.no_report:
        from .datasets import parse_mixture

        mixture = [n for n, _ in parse_mixture(cfg.train_on)] if cfg.train_on else []
        _evaluate(best, out, dataset=mixture[0] if mixture else None, data_dir=cfg.data_dir, limit=cfg.limit)
        if mixture:  # each of the mixture's datasets on its own test set
            from . import crosseval

            result = crosseval.cross_evaluate([best], mixture, cfg.data_dir, cfg.limit)
            print(f"cross-dataset report: {crosseval.write(result, out)}")
    return 0


def _evaluate(ckpt_path: Path, out: Path, dataset, data_dir, limit: int) -> dict:
    from . import report
    from .evaluation import classification_text, evaluate_checkpoint
    from .recognizer import is_checkpoint

    ev = evaluate_checkpoint(ckpt_path, dataset, data_dir, limit)
    run_history = Path(ckpt_path).parent / "history.json"  # the whole run, not just up to the chosen epoch
    own = is_checkpoint(ckpt_path) and run_history.is_file()
    history = json.loads(run_history.read_text()) if own else ev.info["history"]
    page = report.write(out, ev.metrics, ev.images, ev.labels, ev.probs, history,
                        ev.info["config"], classification_text(ev.labels, ev.preds))
    print(classification_text(ev.labels, ev.preds))
    print(f"test accuracy {ev.metrics['test_accuracy']:.4f} ({ev.metrics['errors']} errors in "
          f"{ev.metrics['n_test']:,}); report: {page}")
    return ev.metrics


def cmd_evaluate(args) -> int:
    ckpt = Path(args.checkpoint)
    out = Path(args.out) if args.out else ckpt.parent
    _evaluate(ckpt, out, args.dataset, args.data_dir, args.limit)
    return 0


def cmd_ensemble(args) -> int:
    from . import report
    from .ensemble import evaluate_ensemble
    from .evaluation import classification_text

    missing = [c for c in args.checkpoints if not Path(c).exists()]
    if missing:  # a glob the shell found nothing for arrives as it was typed
        raise DigitrecError(f"no such model file: {missing[0]}")
    if len(args.checkpoints) < 2 and not args.tta:
        raise DigitrecError("an ensemble needs at least two checkpoints (or one with --tta)")
    ev = evaluate_ensemble([Path(c) for c in args.checkpoints], args.dataset, args.data_dir, args.limit, args.tta)
    out = Path(args.out)
    text = classification_text(ev.labels, ev.preds)
    page = report.write(out, ev.metrics, ev.images, ev.labels, ev.probs, [], {"members": ev.metrics["members"],
                        "tta": args.tta}, text, title="digitrec ensemble report")
    print(text)
    print(f"ensemble test accuracy {ev.metrics['test_accuracy']:.4f} ({ev.metrics['errors']} errors in "
          f"{ev.metrics['n_test']:,}); report: {page}")
    return 0


def cmd_serve(args) -> int:
    from .server import Limits, serve

    if args.workers < 1:
        raise DigitrecError("--workers must be at least 1")
    if not 0 < args.port < 65536:
        raise DigitrecError(f"--port must be between 1 and 65535; got {args.port}")
    serve(args.host, args.port, args.model, args.workers,
          Limits(max_body_bytes=args.max_body_bytes, max_pixels=args.max_pixels,
                 timeout_s=args.timeout, cors_origins=args.cors_origin or []), args.log_level)
    return 0


def cmd_cross_eval(args) -> int:
    from . import crosseval

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    result = crosseval.cross_evaluate(args.checkpoints, names, args.data_dir, args.limit)
    print(f"report: {crosseval.write(result, args.out)}")
    return 0


def cmd_finetune(args) -> int:
    from .finetune import finetune

    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "finetune"
    info = finetune(args.checkpoint, args.data, out, holdout=args.holdout, per_class=args.per_class,
                    epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, replay=args.replay,
                    seed=args.seed, data_dir=args.data_dir, threads=args.threads)
    print(f"fine-tuned checkpoint: {info['output']}")
    return 0


def cmd_predict(args) -> int:
    from .predict import run

    if args.threads < 1:
        raise DigitrecError(f"--threads must be at least 1; got {args.threads}")
    return run(args.inputs, args.model, args.top_k, args.min_confidence, args.json,
               args.save_normalized, args.threads)


def cmd_export(args) -> int:
    from .export import export

    out = export(args.checkpoint, args.output)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


def cmd_ocr(args) -> int:
    from .ocr import run_cli

    return run_cli(args.images, args.model, args.json, args.overlay, args.min_confidence)


def cmd_ocr_bench(args) -> int:
    from .ocrbench import run_cli

    return run_cli(args.n, args.length, args.touching_share, args.seed, args.model, args.json,
                   args.save_failures, args.data_dir, args.min_confidence)


def _named(text: str) -> str:
    """An option's value that names something: an empty one is a mistake (not the default)."""
    if not text.strip(" ,"):
        raise argparse.ArgumentTypeError("expected a name, got an empty value")
    return text


def _add_test_set_args(p: argparse.ArgumentParser, default: str | None, default_text: str) -> None:
    p.add_argument("--dataset", type=_named, default=default, help=f"test set (default: {default_text})")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--limit", type=int, default=0, help="score only the first N test images")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition.")
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model and write its evaluation report",
                       description="Train a model (default: the paper's CNN with the paper's settings) "
                                   "and evaluate it on the test set.")
    _add_train_args(p)
    p.add_argument("--out", help="run folder (default: a new folder under runs/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-report", action="store_true", help="skip the evaluation report at the end")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint or an exported model and write its report",
                       description="Score a checkpoint (PyTorch) or an exported .onnx model (ONNX Runtime, an "
                                   "ensemble file too) on a test set and write metrics.json, plots and report.html.")
    p.add_argument("checkpoint", help="a .pt checkpoint written by digitrec train, or a .onnx from digitrec export")
    p.add_argument("--out", help="report folder (default: the checkpoint's folder)")
    _add_test_set_args(p, None, "the one it was trained on")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("ensemble", help="evaluate the mean of several checkpoints' probabilities",
                       description="Average the calibrated probabilities of several checkpoints (optionally with "
                                   "test-time augmentation), score the ensemble and write its report.")
    p.add_argument("checkpoints", nargs="+", help=".pt checkpoints written by digitrec train, or .onnx exports")
    p.add_argument("--tta", action="store_true", help="also average over shifted and rotated views of each image")
    p.add_argument("--out", default="runs/ensemble", help="report folder (default: runs/ensemble)")
    _add_test_set_args(p, "mnist", "mnist")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("serve", help="run the web page and REST API",
                       description="Serve the drawing page (/) and the REST API (/v1/predict, /v1/ocr, "
                                   "/v1/model, /healthz; OpenAPI docs at /docs) with uvicorn.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--model", help="a .onnx or .pt model (default: the bundled model)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, help="request body limit (default: 4 MiB)")
    p.add_argument("--max-pixels", type=int, default=16_000_000, help="image pixel-count limit (default: 16M)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request time limit in seconds (default: 10)")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                   help="allow cross-origin requests from ORIGIN (repeatable; default: CORS off)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level; 'warning' turns off the per-request access log (default: info)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("cross-eval", help="score checkpoints on several test sets (a matrix report)",
                       description="Accuracy of each checkpoint (rows: what it was trained on) on each test set "
                                   "(columns), written as crosseval.json, a heat-map crosseval.png and crosseval.html.")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help=".pt checkpoints or .onnx exports")
    p.add_argument("--datasets", type=_named, default="mnist,usps,semeion,optdigits",
                   help="comma-separated test sets: names, folders or .csv files (default: mnist,usps,semeion,optdigits)")
    p.add_argument("--out", default="runs/cross-eval", help="report folder (default: runs/cross-eval)")
    p.add_argument("--data-dir", help="folder holding the datasets' folders (mnist/, usps/, ...)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N images of each test set")
    p.set_defaults(func=cmd_cross_eval)

    p = sub.add_parser("finetune", help="adapt a model to your own handwriting",
                       description="Fine-tune a checkpoint on a few dozen examples per digit (a folder "
                                   "root/<digit>/*.png, a .csv or a dataset name), holding part of them out; reports "
                                   "before/after accuracy on the hold-out and on MNIST test and writes finetuned.pt.")
    p.add_argument("checkpoint", help="a .pt checkpoint to start from")
    p.add_argument("--data", required=True, help="your examples: root/<digit>/*.png|jpg, a .csv, or a dataset name")
    p.add_argument("--holdout", type=float, default=0.3, help="fraction held out for the before/after figures (default: 0.3)")
    p.add_argument("--per-class", type=int, default=0,
                   help="tune on exactly N examples of each digit and hold out the rest (overrides --holdout)")
    p.add_argument("--epochs", type=int, default=30, help="passes over the tuning examples (default: 30)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default: 3e-4)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--replay", type=float, default=1.0,
                   help="MNIST training images mixed in per tuning example, against forgetting (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--data-dir", help="folder with the dataset files (for a dataset name)")
    p.add_argument("--out", help="output folder (default: finetune/ beside the checkpoint)")
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser("predict", help="recognize the digit in each image",
                       description="Recognize one digit per image: files, folders (searched recursively) "
                                   "and globs. Runs on ONNX Runtime; exit status 1 if any file failed.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR_OR_GLOB", help="images, folders or glob patterns")
    p.add_argument("--model", help="a .onnx from `digitrec export` or a .pt checkpoint (default: the bundled model)")
    p.add_argument("--top-k", type=int, default=3, help="how many best labels to list (default: 3)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per input")
    p.add_argument("--min-confidence", type=float, default=0.6,
                   help="below this calibrated probability the answer is 'uncertain' (default: 0.6)")
    p.add_argument("--save-normalized", metavar="DIR", help="write the 28×28 image the model saw for each input")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: 1)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint (or an ensemble) to ONNX",
                       description="Write a .onnx file (input 'pixels' N×1×28×28 in [0,1]; outputs 'probs' "
                                   "and 'logits') with the normalization, calibration and metrics as metadata. "
                                   "Several models (.pt or .onnx) make one ensemble file, combined as "
                                   "`digitrec ensemble` does (ensemble.combine).")
    p.add_argument("checkpoint", nargs="+", help="a .pt checkpoint written by digitrec train (several: "
                                                 ".pt or .onnx members of an ensemble)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("ocr", help="read handwritten numbers (one or more digits, one or more lines)",
                       description="Read the handwritten digits in each image (files, folders searched "
                                   "recursively, globs), line by line. Prints each "
                                   "image's text ('?' for a digit the model is unsure of); exit status 1 "
                                   "if any image could not be read.")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR_OR_GLOB", help="images, folders or glob patterns")
    p.add_argument("--json", action="store_true",
                   help="print JSON: path, text, lines (text, digits: label, confidence, box [x0, y0, x1, y1])")
    p.add_argument("--overlay", metavar="OUT.png",
                   help="draw the boxes and labels on the image (a folder when several images are given)")
    p.add_argument("--model", help="a .onnx from `digitrec export` or a .pt checkpoint (default: the bundled OCR model)")
    p.add_argument("--min-confidence", type=float, default=0.6,
                   help="below this probability a digit reads as '?' (default: 0.6)")
    p.set_defaults(func=cmd_ocr)

    p = sub.add_parser("ocr-bench", help="score the OCR on synthetic numbers made of MNIST test digits",
                       description="Compose handwritten numbers from MNIST test digits (random spacing, "
                                   "size, slant, stroke width, touching neighbours, paper, noise, JPEG), read "
                                   "them and report sequence accuracy, digit accuracy and character error "
                                   "rate, for separated and touching numbers.")
    p.add_argument("--n", type=int, default=500, help="numbers to generate (default: 500)")
    p.add_argument("--length", default="5", help="digits per number, or a range like 3-10 (default: 5)")
    p.add_argument("--touching-share", type=float, default=0.5,
                   help="share of numbers with at least one touching/overlapping pair (default: 0.5)")
    p.add_argument("--seed", default="0",
                   help="random seed, or a range like 0-4: --n numbers of each seed, scored together (default: 0)")
    p.add_argument("--model", help="a .onnx or .pt model (default: the bundled OCR model)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--save-failures", metavar="DIR", help="write the images read wrongly into DIR")
    p.add_argument("--min-confidence", type=float, default=0.6,
                   help="below this probability a digit reads as '?', which counts as wrong (default: 0.6)")
    p.add_argument("--data-dir", help="folder with the MNIST files")
    p.set_defaults(func=cmd_ocr_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # progress lines show up at once in logs and pipes too
        sys.stdout.reconfigure(line_buffering=True)
    try:
        return args.func(args)
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name not in TRAIN_EXTRA:
            raise
        print(f"digitrec: error: `digitrec {args.command}` needs {e.name}, which the training extra installs: "
              "pip install 'digitrec[train]' (torch's CPU build first: see the README's Install)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of a pipe closed it (`digitrec ocr ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error at exit)
        return 141
    except OSError as e:  # a file or folder the command could not read or write: a message, not a traceback
        target = e.filename2 if e.filename2 is not None else e.filename  # a rename names its target second
        print(f"digitrec: error: {target}: {e.strerror}" if target is not None and e.strerror else
              f"digitrec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
