"""The trainer: small named loops over in-memory tensors, checkpoints, history and resume.

`train_epoch` runs one pass of the training set; `evaluate` scores a split;
`fit` runs a whole configured training into a run folder:
  config.json, history.json, history.csv   the resolved config and per-epoch figures
  last.pt                                  the latest complete epoch (what --resume continues)
  best.pt                                  the epoch with the best validation accuracy
Nothing here draws or writes reports (see `report.py`).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint, datasets
from .calibration import calibrate
from .config import TrainConfig
from .errors import DigitrecError
from .models import count_parameters, create_model


def to_input(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N×28×28 -> float N×1×28×28, scaled to [0, 1] then normalized."""
    x = images.unsqueeze(1).float().div_(255.0)
    if mean != 0.0 or std != 1.0:
        x.sub_(mean).div_(std)
    return x


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )


def train_epoch(model, optimizer, x, y, batch_size, generator, desc="train") -> tuple[float, float]:
    """One shuffled pass over (x, y). Returns mean loss and accuracy."""
    model.train()
    n = len(y)
    order = torch.randperm(n, generator=generator)
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    seen = 0
    bar = tqdm(total=n, desc=desc, unit="img", leave=False, disable=None, dynamic_ncols=True)
    for i, start in enumerate(range(0, n, batch_size)):
        idx = order[start : start + batch_size]
        xb, yb = x[idx], y[idx]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            total_loss += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
        seen += len(idx)
        bar.update(len(idx))
        if i % 50 == 0:
            bar.set_postfix(loss=f"{total_loss.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
    bar.close()
    return total_loss.item() / n, correct.item() / n


@torch.inference_mode()
def predict_logits(model, x, batch_size: int = 2000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(model, x, y, batch_size: int = 2000) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on (x, y), in eval mode, without gradients."""
    logits = predict_logits(model, x, batch_size)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def _write_history(out: Path, history: list[dict]) -> None:
    with open(out / "history.json", "w") as f:
        json.dump(history, f, indent=2)
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def new_run_dir(root: str | os.PathLike = "runs", model: str = "paper_cnn") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{stamp}-{model}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{stamp}-{model}-{n}"
    return path


def fit(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, log=print) -> Path:
    """Train per `cfg` into folder `out`; return the path of the checkpoint to evaluate.

    With resume=True, continue from `out/last.pt` (its saved config wins, except `epochs`).
    Ctrl-C stops after cleaning up: last.pt always holds the last complete epoch.
    """
    out = Path(out)
    state = None
    if resume:
        state = checkpoint.load(out / "last.pt")
        cfg = replace(TrainConfig.from_dict(state["config"]), epochs=cfg.epochs)
        log(f"resuming {out} after epoch {state['epoch']} of {cfg.epochs}")
    elif (out / "last.pt").exists():
        raise DigitrecError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")

    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)
    data = datasets.prepare(cfg.dataset, cfg.data_dir, cfg.val_split, cfg.limit, cfg.seed)
    x_train = to_input(data["train"].images, cfg.input_mean, cfg.input_std)
    x_val = to_input(data["val"].images, cfg.input_mean, cfg.input_std)
    y_train, y_val = data["train"].labels, data["val"].labels

    model = create_model(cfg.model)
    optimizer = make_optimizer(model, cfg)
    shuffle = torch.Generator().manual_seed(cfg.seed + 1)
    history: list[dict] = []
    best_acc = -1.0
    if state is not None:
        model.load_state_dict(state["weights"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["rng"]["shuffle"])
        torch.set_rng_state(state["rng"]["torch"])
        history = state["history"]
        best_acc = max(h["val_acc"] for h in history)
    val_name = "validation" if cfg.val_split else "test (as the paper)"
    log(
        f"model {cfg.model} ({count_parameters(model):,} parameters), train {len(y_train):,}, "
        f"{val_name} {len(y_val):,}, batch {cfg.batch_size}, epochs {cfg.epochs}, "
        f"threads {torch.get_num_threads()} -> {out}"
    )

    select_on_val = cfg.val_split > 0  # never select on the test set
    try:
        for epoch in range(len(history) + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss, acc = train_epoch(model, optimizer, x_train, y_train, cfg.batch_size, shuffle,
                                    desc=f"epoch {epoch}/{cfg.epochs}")
            train_time = time.perf_counter() - t0
            val_loss, val_acc = evaluate(model, x_val, y_val)
            row = dict(epoch=epoch, train_loss=loss, train_acc=acc, val_loss=val_loss, val_acc=val_acc,
                       epoch_time=train_time, images_per_s=len(y_train) / train_time)
            history.append(row)
            log(f"epoch {epoch}/{cfg.epochs}  loss {loss:.4f}  acc {acc:.4f}  val_loss {val_loss:.4f}  "
                f"val_acc {val_acc:.4f}  {train_time:.1f}s ({row['images_per_s']:.0f} img/s)")
            ckpt = dict(
                model=cfg.model, model_kwargs={}, weights=model.state_dict(), config=cfg.to_dict(),
                normalization={"mean": cfg.input_mean, "std": cfg.input_std},
                calibration={"temperature": 1.0}, metrics=row, history=history, epoch=epoch,
                optimizer=optimizer.state_dict(),
                rng={"shuffle": shuffle.get_state(), "torch": torch.get_rng_state()},
            )
            _write_history(out, history)
            if not select_on_val or val_acc > best_acc:
                best_acc = val_acc
                checkpoint.save(out / "best.pt", checkpoint.slim(ckpt))
            checkpoint.save(out / "last.pt", ckpt)  # last: a crash before this leaves the previous epoch
    except KeyboardInterrupt:
        done = len(history)
        print(f"\ninterrupted. {out / 'last.pt'} holds epoch {done}; continue with: "
              f"digitrec train --resume --out {out}", file=sys.stderr)
        raise
    calibrate_checkpoint(out / "best.pt", x_val, y_val, log)
    return out / "best.pt"


def calibrate_checkpoint(path: Path, x_val, y_val, log=print) -> dict:
    """Fit the temperature of the checkpoint at `path` on validation data and store it there."""
    ckpt = checkpoint.load(path)
    logits = predict_logits(checkpoint.build_model(ckpt), x_val)
    cal = calibrate(logits, y_val)
    ckpt["calibration"] = cal
    checkpoint.save(path, ckpt)
    log(f"calibration: temperature {cal['temperature']:.3f}, ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f} "
        f"on {cal['fitted_on']:,} validation images")
    return cal
