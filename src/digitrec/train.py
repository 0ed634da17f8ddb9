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
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint, datasets
from .augment import Augment, touching_pairs
from .calibration import calibrate
from .config import SCHEDULES, TrainConfig
from .errors import DigitrecError
from .models import count_parameters, create_model
from .teacher import distill_loss, paths as teacher_paths, soft_targets


NOT_ONE_DIGIT = 10  # the label of the optional 11th class (TrainConfig.reject): two digits, not one


def model_kwargs(cfg: TrainConfig) -> dict:
    """Constructor arguments of the configured model: an 11th output when the reject class is on,
    a deskewing first layer when asked."""
    kwargs = {}
    if cfg.reject:
        kwargs["num_classes"] = NOT_ONE_DIGIT + 1
    if cfg.deskew:
        kwargs["deskew"] = True
    return kwargs


def to_input(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N×28×28 (or floats in 0..255) -> float N×1×28×28, scaled to [0, 1] then normalized.

    Always a new tensor: a float input is never scaled in place under its caller."""
    x = images.unsqueeze(1).to(torch.float32, copy=True).div_(255.0)
    if mean != 0.0 or std != 1.0:
        x.sub_(mean).div_(std)
    return x


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
        weight_decay=cfg.weight_decay, fused=cfg.fused_adam or None,
    )


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """The per-batch LR schedule named by cfg.schedule (None for a constant LR)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "onecycle":
        if total < 3:  # too few steps for a rise and a fall: keep the LR constant
            return None
        pct = min(max(cfg.warmup, 2 / total), 1 - 1 / total)  # each phase at least one step (tiny runs)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct)
    if cfg.schedule == "cosine":
        warm = int(cfg.warmup * total)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (
            (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))))
    if cfg.schedule == "exponential":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cfg.lr_decay ** (s / steps_per_epoch))
    raise DigitrecError(f"unknown schedule {cfg.schedule!r}; known: {', '.join(SCHEDULES)}")


def make_ema(model: torch.nn.Module, decay: float):
    """An exponential moving average of the weights (and BN statistics, see `recompute_bn`), or None when decay is 0."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


BN_IMAGES = 5120  # training images that re-estimate an EMA model's BatchNorm statistics after each epoch


def recompute_bn(model: torch.nn.Module, x: torch.Tensor, channels_last: bool = False, batch_size: int = 256) -> None:
    """Re-estimate the BatchNorm statistics of `model` (an EMA) on the images `x`; no-op without BatchNorm.

    An EMA averages the weights and, separately, the BN statistics the live weights
    produced along the way; the averaged weights need statistics of their own. Without
    this a ResNet's EMA read 9.8% of validation after 3 epochs, and 99.36% with its
    statistics recomputed (docs/training.md).
    """
    from torch.optim.swa_utils import update_bn

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.no_grad():
        update_bn((x[i:i + batch_size].contiguous(memory_format=fmt) for i in range(0, len(x), batch_size)),
                  model)


def blank_value(cfg: TrainConfig) -> float:
    """What a blank (0) pixel becomes after the configured input normalization."""
    return (0.0 - cfg.input_mean) / cfg.input_std


def make_augment(cfg: TrainConfig) -> Augment | None:
    """The configured augmentation (blank pixels keep the normalized background), or None when all is off."""
    aug = Augment(cfg.rotation, cfg.shift, cfg.zoom, cfg.elastic, cfg.elastic_sigma, cfg.stroke, cfg.thin,
                  background=blank_value(cfg))
    return aug if aug.active else None


def training_batch(xb, yb, generator, augment=None, reject: float = 0.0, background: float = 0.0):
    """A batch as training sees it: augmented, and a `reject` share replaced by touching pairs labelled NOT_ONE_DIGIT."""
    if augment is not None:
        xb = augment(xb, generator)
    if reject:
        k = max(1, round(reject * len(yb)))
        xb = torch.cat([xb[:-k], touching_pairs(xb, k, generator, background)])
        yb = torch.cat([yb[:-k], torch.full((k,), NOT_ONE_DIGIT, dtype=yb.dtype)])
    return xb, yb


def ema_bn_images(x, y, cfg: TrainConfig, augment, epoch: int) -> torch.Tensor:
    """BN_IMAGES training images drawn at random, made into batches as training makes them (augmented, pairs).

    The EMA's BatchNorm statistics must be those of the data its weights were trained on:
    re-estimated on clean MNIST alone, the EMA of a run with pen-width augmentation and
    the "not one digit" class read 142 of 5,000 validation digits as "not one digit"
    (96.72%), and 99.22% on batches made like these (docs/training.md).
    """
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)  # its own stream: training's is untouched
    idx = torch.randperm(len(y), generator=g)[:BN_IMAGES]
    batches = [training_batch(x[i], y[i], g, augment, cfg.reject, blank_value(cfg))[0] for i in idx.split(cfg.batch_size)]
    return torch.cat(batches)


def train_epoch(model, optimizer, x, y, batch_size, generator, desc="train", *, scheduler=None, ema=None,
                augment=None, label_smoothing: float = 0.0, channels_last: bool = False,
                reject: float = 0.0, background: float = 0.0, bf16: bool = False,
                soft=None, teacher_weight: float = TrainConfig.teacher_weight,
                teacher_temperature: float = TrainConfig.teacher_temperature) -> tuple[float, float]:
    """One shuffled pass over (x, y). Returns mean loss and accuracy.

    The epoch's order is drawn once and the data gathered once into that order, so
    each batch is a contiguous slice (no per-batch fancy indexing); running sums stay
    tensors, read once at the end. Optional per batch: augmentation (drawing from
    `generator` after the order), a `reject` share of the batch replaced by touching
    pairs labelled NOT_ONE_DIGIT, an LR scheduler step and an EMA update. With `bf16` the
    forward pass and the loss run under bfloat16 autocast; weights, gradients, optimizer and
    BatchNorm statistics stay float32. With `soft` (N×10 teachers' targets, NaN rows for
    none) the loss is `teacher.distill_loss`; the pairs of `reject` take their hard label.
    """
    model.train()
    n = len(y)
    order = torch.randperm(n, generator=generator)
    xs, ys = x[order], y[order]
    ss = soft[order] if soft is not None else None
    n_batches = -(-n // batch_size)
    losses = torch.zeros(n_batches, dtype=torch.float64)
    correct = torch.zeros(n_batches, dtype=torch.int64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    bar = tqdm(total=n, desc=desc, unit="img", leave=False, disable=None, dynamic_ncols=True)
    for i in range(n_batches):
        xb, yb = training_batch(xs[i * batch_size : (i + 1) * batch_size], ys[i * batch_size : (i + 1) * batch_size],
                                generator, augment, reject, background)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(xb.contiguous(memory_format=fmt))
            if ss is None:
                loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
            else:
                sb = ss[i * batch_size : (i + 1) * batch_size].clone()
                sb[yb == NOT_ONE_DIGIT] = float("nan")  # the pairs that replaced the batch's last rows
                loss = distill_loss(logits, yb, sb, teacher_weight, teacher_temperature, label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        with torch.no_grad():
            losses[i] = loss.detach() * len(yb)
            correct[i] = (logits.argmax(1) == yb).sum()
        if not bar.disable:
            bar.update(len(yb))
            if i % 50 == 0:
                seen = min(n, (i + 1) * batch_size)
                bar.set_postfix(loss=f"{losses[: i + 1].sum().item() / seen:.4f}",
                                acc=f"{correct[: i + 1].sum().item() / seen:.4f}")
    bar.close()
    return losses.sum().item() / n, correct.sum().item() / n


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


def fit(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, log=print, on_epoch=None) -> Path:
    """Train per `cfg` into folder `out`; return the path of the checkpoint to evaluate.

    With resume=True, continue from `out/last.pt` (its saved config wins, except `epochs`).
    Ctrl-C stops after cleaning up: last.pt always holds the last complete epoch.
    `on_epoch(row, model)`, if given, is called after each epoch's validation with the
    model that is validated (the EMA when on); a dict it returns is added to the row
    (benchmarks use it to log test accuracy; it plays no part in selection).
    """
    out = Path(out)
    state = None
    if resume:
        state = checkpoint.load(out / "last.pt")
        saved = TrainConfig.from_dict(state["config"])
        if saved.schedule != "constant" and cfg.epochs != saved.epochs:
            raise DigitrecError(f"{out} follows a {saved.schedule} schedule fixed to {saved.epochs} epochs; "
                                f"resume it with --epochs {saved.epochs}")
        cfg = replace(saved, epochs=cfg.epochs)
        log(f"resuming {out} after epoch {state['epoch']} of {cfg.epochs}")
    elif out.exists() and not out.is_dir():
        raise DigitrecError(f"{out} is a file; --out names the run's folder")
    elif (out / "last.pt").exists():
        raise DigitrecError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    cfg.check()
    if cfg.teacher:  # the config records the teachers themselves, not a glob that may match others later
        cfg = replace(cfg, teacher=",".join(teacher_paths(cfg.teacher)))
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)
    data = datasets.prepare(cfg.train_on or cfg.dataset, cfg.data_dir, cfg.val_split, cfg.limit, cfg.seed)
    out.mkdir(parents=True, exist_ok=True)  # only once the data is there: a bad name leaves nothing behind
    cfg.save(out / "config.json")
    x_train = to_input(data["train"].images, cfg.input_mean, cfg.input_std)
    x_val = to_input(data["val"].images, cfg.input_mean, cfg.input_std)
    y_train, y_val = data["train"].labels, data["val"].labels
    if cfg.ocr_lines:  # OCR's cuts of synthetic lines of the training digits (never validation or test ones)
        from . import ocrdata

        t0 = time.perf_counter()
        ocr_x, ocr_y = ocrdata.make(data["train"].images, data["train"].labels, cfg.ocr_lines, cfg.seed)
        x_train = torch.cat([x_train, to_input(ocr_x, cfg.input_mean, cfg.input_std)])
        y_train = torch.cat([y_train, ocr_y])
        log(f"OCR examples: {len(ocr_y):,} crops ({int((ocr_y < NOT_ONE_DIGIT).sum()):,} digits) "
            f"from {cfg.ocr_lines:,} lines in {time.perf_counter() - t0:.0f} s")
    soft = None
    if cfg.teacher:  # knowledge distillation: the teachers' soft targets for each training image (not OCR crops)
        t0 = time.perf_counter()
        teachers = cfg.teacher.split(",")
        soft = soft_targets(teachers, data["train"].images, cfg.teacher_temperature, log=log)
        soft = torch.cat([soft, torch.full((len(y_train) - len(soft), 10), float("nan"))])
        log(f"soft targets of {len(teachers)} teachers at temperature {cfg.teacher_temperature:g} "
            f"in {time.perf_counter() - t0:.0f} s")

    model = create_model(cfg.model, **model_kwargs(cfg))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, -(-len(y_train) // cfg.batch_size))
    ema = make_ema(model, cfg.ema)
    augment = make_augment(cfg)
    shuffle = torch.Generator().manual_seed(cfg.seed + 1)
    history: list[dict] = []
    best_acc = -1.0
    if state is not None:
        train_state = state.get("train_state") or {}
        model.load_state_dict(train_state.get("weights", state["weights"]))
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(train_state["scheduler"])
        if ema is not None:
            ema.load_state_dict(train_state["ema"])
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
                                    desc=f"epoch {epoch}/{cfg.epochs}", scheduler=scheduler, ema=ema,
                                    augment=augment, label_smoothing=cfg.label_smoothing,
                                    channels_last=cfg.channels_last, reject=cfg.reject,
                                    background=blank_value(cfg), bf16=cfg.precision == "bf16", soft=soft,
                                    teacher_weight=cfg.teacher_weight, teacher_temperature=cfg.teacher_temperature)
            train_time = time.perf_counter() - t0
            if ema is not None and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in ema.modules()):
                recompute_bn(ema.module, ema_bn_images(x_train, y_train, cfg, augment, epoch), cfg.channels_last,
                             cfg.batch_size)
            validated = ema.module if ema is not None else model
            val_loss, val_acc = evaluate(validated, x_val, y_val)
            row = dict(epoch=epoch, train_loss=loss, train_acc=acc, val_loss=val_loss, val_acc=val_acc,
                       epoch_time=train_time, images_per_s=len(y_train) / train_time)
            if on_epoch is not None:
                row.update(on_epoch(row, validated) or {})
            history.append(row)
            log(f"epoch {epoch}/{cfg.epochs}  loss {loss:.4f}  acc {acc:.4f}  val_loss {val_loss:.4f}  "
                f"val_acc {val_acc:.4f}  {train_time:.1f}s ({row['images_per_s']:.0f} img/s)")
            ckpt = dict(
                model=cfg.model, model_kwargs=model_kwargs(cfg), weights=validated.state_dict(), config=cfg.to_dict(),
                normalization={"mean": cfg.input_mean, "std": cfg.input_std},
                calibration={"temperature": 1.0}, metrics=row, history=history, epoch=epoch,
                sizes={"train": len(y_train), "validation": len(y_val) if select_on_val else 0},
                optimizer=optimizer.state_dict(),
                rng={"shuffle": shuffle.get_state(), "torch": torch.get_rng_state()},
                train_state={"weights": model.state_dict(),
                             "scheduler": scheduler.state_dict() if scheduler is not None else None,
                             "ema": ema.state_dict() if ema is not None else None},
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
    if select_on_val:
        calibrate_checkpoint(out / "best.pt", x_val, y_val, log)
    else:  # its only held-out images are the test set, which must not fit anything
        log("calibration: none (temperature 1): without a validation split it would be fitted on the test set")
    return out / "best.pt"


def calibrate_checkpoint(path: Path, x_val, y_val, log=print) -> dict:
    """Fit the temperature of the checkpoint at `path` on validation data and store it there."""
    ckpt = checkpoint.load(path)
    logits = predict_logits(checkpoint.build_model(ckpt), x_val)
    cal = calibrate(logits, y_val)
    ckpt["calibration"] = cal
    checkpoint.save(path, ckpt)
    if "refused" in cal:
        log(f"calibration: none (temperature 1): the fitted T {cal['refused']:.3f} would raise the ECE on the "
            f"{cal['fitted_on']:,} validation images")
    else:
        log(f"calibration: temperature {cal['temperature']:.3f}, ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f} "
            f"on {cal['fitted_on']:,} validation images")
    return cal
