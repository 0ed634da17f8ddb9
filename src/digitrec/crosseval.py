"""Cross-dataset evaluation: every checkpoint on every test set, as one accuracy matrix.

Rows are models, labelled by what each was trained on (its config's `train_on` or
`dataset`); columns are test sets (mnist, usps, semeion, optdigits, a folder or a
CSV). Each test set is loaded once and each model once. `write` stores the matrix
as crosseval.json and, through `report.write_cross_eval`, a heat-map PNG and an
HTML page. Scoring a single checkpoint in depth is `evaluation.py`'s job.
"""

from __future__ import annotations

import json
from pathlib import Path


from . import datasets
from .evaluation import load_scorer

DEFAULT_DATASETS = ("mnist", "usps", "semeion", "optdigits")


def trained_on(info: dict) -> str:
    """What a model (`evaluation.load_scorer`'s info, or a checkpoint) was trained on, as a short
    label ('mnist', 'mnist,usps:2', ...; '?' for an ensemble file)."""
    cfg = info.get("config", {})
    label = cfg.get("train_on") or cfg.get("dataset", "?")
    if info.get("finetune"):
        label += f" + finetune {info['finetune']['data']}"
    return label


def cross_evaluate(checkpoints, names=DEFAULT_DATASETS, data_dir=None, limit: int = 0, log=print) -> dict:
    """Accuracy of each checkpoint on each dataset's test set (the first `limit` images when set).

    A pool (a folder or CSV) has no test part: a checkpoint trained on it is scored on the fifth its
    training held out (its row's `n_test` says how many), any other on the whole pool."""
    data = {name: datasets.load(name, data_dir) for name in names}
    rows, sizes = [], {}
    for path in checkpoints:
        probs_of, info = load_scorer(path)
        row = {"checkpoint": str(path), "model": info["model"], "trained_on": trained_on(info),
               "accuracy": {}, "errors": {}, "n_test": {}}
        for name in names:
            test = datasets.unseen_test(name, data[name], info.get("config", {})).head(limit)
            preds = probs_of(test.images).argmax(1)
            wrong = int((preds != test.labels).sum())
            row["accuracy"][name] = 1 - wrong / len(test)
            row["errors"][name] = wrong
            row["n_test"][name] = len(test)
            sizes[name] = max(sizes.get(name, 0), len(test))
        log(f"{row['trained_on']:>28} ({info['model']}): "
            + "  ".join(f"{n} {row['accuracy'][n]:.4f}" for n in names))
        rows.append(row)
    return {"datasets": list(names), "n_test": sizes, "models": rows}


def row_labels(result: dict) -> list[str]:
    """'trained_on · model', made unique with the checkpoint path when two rows share it."""
    labels = [f"{r['trained_on']} · {r['model']}" for r in result["models"]]
    return [f"{lab} ({r['checkpoint']})" if labels.count(lab) > 1 else lab
            for lab, r in zip(labels, result["models"])]


def write(result: dict, out) -> Path:
    """crosseval.json, crosseval.png and crosseval.html in `out`; returns the HTML path."""
    from .report import write_cross_eval

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "crosseval.json").write_text(json.dumps(result, indent=2))
    return write_cross_eval(out, result, row_labels(result))
