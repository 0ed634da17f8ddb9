"""Training throughput of the paper's CNN at batch 64 (or another model): digitrec's trainer step by step, and the paper's Keras script.

Each variant adds one change to the one before it:
  legacy          the foundation's loop: per-batch fancy indexing, for-loop AdamW, NCHW
  +fused_adam     AdamW(fused=True)
  +contiguous     the epoch gathered once into shuffled order, batches are slices, no per-batch syncs
  +channels_last  NHWC memory format (digitrec's default trainer: train.train_epoch with the default config)
  +bf16           the forward pass under bfloat16 autocast (--precision bf16; pays on CPUs with AMX or AVX512-BF16)
Variants run interleaved in rounds (the CPU is shared: compare within one run, as ratios),
each timed on the same images. With --keras, the paper's Keras script (keras_paper.py) runs
in a subprocess between rounds on the same images, and the digitrec/Keras ratio is reported.

  python benchmarks/train_throughput.py --keras
writes benchmarks/results/train_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from common import machine
from digitrec import datasets
from digitrec.config import TrainConfig
from digitrec.models import create_model
from digitrec.train import make_optimizer, to_input, train_epoch

RESULTS = Path(__file__).parent / "results"


def legacy_epoch(model, optimizer, x, y, batch_size, generator) -> None:
    """The foundation's train_epoch (commit d85f745), without its progress bar."""
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    for i, start in enumerate(range(0, len(y), batch_size)):
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
        if i % 50 == 0:
            total_loss.item(), correct.item()


VARIANTS = {  # name: (fused_adam, new loop, channels_last, bf16)
    "legacy": (False, False, False, False),
    "+fused_adam": (True, False, False, False),
    "+contiguous": (True, True, False, False),
    "+channels_last": (True, True, True, False),
    "+bf16": (True, True, True, True),
}


def make_runner(name: str, x, y, batch_size: int, model_name: str = "paper_cnn", seed: int = 0):
    fused, new_loop, cl, bf16 = VARIANTS[name]
    torch.manual_seed(seed)
    cfg = TrainConfig(batch_size=batch_size, fused_adam=fused, channels_last=cl)
    model = create_model(model_name)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(seed + 1)

    def run() -> float:
        t0 = time.perf_counter()
        if new_loop:
            train_epoch(model, opt, x, y, batch_size, gen, channels_last=cl, bf16=bf16)
        else:
            legacy_epoch(model, opt, x, y, batch_size, gen)
        return len(y) / (time.perf_counter() - t0)

    return run


def keras_once(images: int, threads: int) -> float:
    """Steady-state images/s of the Keras script: 2 epochs on `images` images, the second one timed."""
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "keras_paper.py"), "--epochs", "2",
                          "--limit", str(images), "--threads", str(threads), "--no-validate"],
                         capture_output=True, text=True, check=True)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    return rec["images_per_s"][-1], rec["engine"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=12800, help="images per timed pass")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="paper_cnn", help="registry model to train (--keras needs paper_cnn)")
    ap.add_argument("--keras", action="store_true", help="also time the paper's Keras script (needs .[bench])")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--out", default=str(RESULTS / "train_throughput"))
    a = ap.parse_args()
    if a.keras and a.model != "paper_cnn":
        ap.error("--keras times the paper's script, which trains paper_cnn only")

    torch.set_num_threads(a.threads)
    train = datasets.load("mnist")["train"]
    x, y = to_input(train.images[: a.images], 0.0, 1.0), train.labels[: a.images]
    names = a.variants.split(",")
    runners = {n: make_runner(n, x, y, a.batch_size, a.model) for n in names}
    for run in runners.values():  # warm-up: first-call allocations and kernel selection
        run()
    figures: dict[str, list[float]] = {n: [] for n in names}
    keras: list[float] = []
    engine = None
    for r in range(a.rounds):
        if a.keras:
            ips, engine = keras_once(a.images, a.threads)
            keras.append(ips)
            print(f"round {r + 1}: keras {ips:.0f} img/s", flush=True)
        for n, run in runners.items():
            figures[n].append(run())
            print(f"round {r + 1}: {n} {figures[n][-1]:.0f} img/s", flush=True)

    med = {n: statistics.median(v) for n, v in figures.items()}
    base = med[names[0]]
    record = {
        "benchmark": "train_throughput", "model": a.model, "batch_size": a.batch_size,
        "images_per_pass": a.images, "rounds": a.rounds, "threads": a.threads,
        **machine(),  # its load_average is read here, at the end
        "command": "python " + " ".join(sys.argv),
        "digitrec_images_per_s": {n: v for n, v in figures.items()},
        "median_images_per_s": med,
        "speedup_vs_first": {n: med[n] / base for n in names},
    }
    rows = [f"| {n} | {med[n]:.0f} | {med[n] / base:.2f}× | " + ", ".join(f"{v:.0f}" for v in figures[n]) + " |"
            for n in names]
    if keras:
        km = statistics.median(keras)
        best = names[-1]
        record.update(keras_engine=engine, keras_images_per_s=keras, keras_median_images_per_s=km,
                      ratio_digitrec_over_keras=med[best] / km,
                      ratio_per_round=[d / k for d, k in zip(figures[best], keras)])
        rows.append(f"| Keras (paper's script) | {km:.0f} | {km / base:.2f}× | " + ", ".join(f"{v:.0f}" for v in keras) + " |")
    md = [f"# Training throughput, {a.model}, batch {a.batch_size}, {a.threads} threads",
          "", f"Command: `{record['command']}`  ", f"{record['machine']}, bf16 hardware: "
          f"{', '.join(record['bf16_hardware']) or 'none'}; torch {torch.__version__}; load average at end "
          f"{record['load_average'][0]:.1f} (shared CPU: compare within this table only)", "",
          "| trainer | median img/s | vs first | each round |", "|---|---|---|---|", *rows]
    if keras:
        md += ["", f"**digitrec ({names[-1]}) / Keras = {record['ratio_digitrec_over_keras']:.2f}×** (medians; "
               "per round: " + ", ".join(f"{r:.2f}×" for r in record["ratio_per_round"]) + ")"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(record, indent=2))
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
