"""Helpers shared by the benchmark scripts: test-set scoring per epoch and writing results (JSON + Markdown)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
            "bf16_hardware": bf16_hardware(), "torch": torch.__version__, "load_average": os.getloadavg(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def bf16_hardware() -> list[str]:
    """The CPU's bfloat16 matrix features (Linux), which `--precision bf16` needs to pay: amx_bf16, avx512_bf16."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("amx_bf16", "avx512_bf16")})


def scanned(im, angle: float, jpeg: bool):
    """A drawn sheet as a scan: turned by `angle` degrees (bicubic, white corners) and, with `jpeg`,
    saved as JPEG at quality 60 and read back."""
    import io

    from PIL import Image

    if angle:
        im = im.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255, expand=True)
    if jpeg:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=60)
        im = Image.open(io.BytesIO(buf.getvalue()))
    return im


def tally(rows: list[dict], styles: dict, kinds: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Images read right per subset (all, then each value of each setting in `styles`) and per kind
    (each row's "kind"; one of them is "without", the same digits without lines): the record's
    subsets, and the Markdown table's rows."""
    import numpy as np

    subsets, md = {}, []
    for name, keep in [("all", lambda r: True)] + [(f"{key} {v}", lambda r, key=key, v=v: r[key] == v)
                                                   for key, values in styles.items() for v in values]:
        right = {kind: [r["right"] for r in rows if keep(r) and r["kind"] == kind] for kind in kinds}
        subsets[name] = {"n": len(right["without"]), **{k: sum(v) for k, v in right.items()}}
        md.append(f"| {name} | " + " | ".join(f"{sum(v)} of {len(v)} ({np.mean(v):.0%})" for v in right.values()) + " |")
    return subsets, md


def command() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def test_monitor(mean: float = 0.0, std: float = 1.0):
    """An `on_epoch` callback for train.fit that adds test accuracy to each epoch's row (monitoring only)."""
    from digitrec import datasets
    from digitrec.train import evaluate, to_input

    test = datasets.load("mnist")["test"]
    x = to_input(test.images, mean, std)

    def on_epoch(row, model):
        return {"test_acc": evaluate(model, x, test.labels)[1]}

    return on_epoch


def write(name: str, record: dict, markdown: list[str], out: str | None = None) -> Path:
    base = Path(out) if out else RESULTS / name
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(record, indent=2))
    base.with_suffix(".md").write_text("\n".join(markdown) + "\n")
    print("\n".join(markdown))
    return base
