"""End-to-end prediction latency: image file -> label (decode + preprocess + ONNX Runtime inference).

    python benchmarks/predict_latency.py [--model PATH] [--repeats 300] [--batch 256]

For three kinds of input file (a 280×280 RGBA canvas export, a 512×512 JPEG photo of a
digit on paper, a 28×28 PNG), times `Recognizer.predict(path)` one image at a time (p50,
p90, p99 after a warm-up) and `predict_batch` on BATCH files (images per second), plus
the network alone (`predict_normalized`). Digits are the first MNIST test images,
rendered as those files. Writes benchmarks/results/predict_latency.{json,md}.
The load average is recorded: figures taken on a busy machine are not representative.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GOAL_P50_MS = 2.0


def canvas_png(d: np.ndarray) -> bytes:
    """Black strokes on transparent pixels, 280×280, as the drawing page exports."""
    alpha = np.asarray(Image.fromarray(d).resize((280, 280), Image.Resampling.BILINEAR))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = alpha
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def photo_jpeg(d: np.ndarray, rng) -> bytes:
    """Dark on light paper, 300 px digit off-centre on 512×512, noise, JPEG quality 85."""
    big = np.asarray(Image.fromarray(d).resize((300, 300), Image.Resampling.BICUBIC), np.float32)
    img = np.full((512, 512), 220.0, np.float32)
    y, x = rng.integers(0, 212, 2)
    img[y:y + 300, x:x + 300] -= 180.0 * big / 255.0
    img += rng.normal(0, 6, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def small_png(d: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(255 - d).save(buf, "PNG")
    return buf.getvalue()


def percentiles(times_s: list[float]) -> dict:
    ms = np.asarray(times_s) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "n": len(ms)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a .onnx or .pt model (default: the bundled default model)")
    ap.add_argument("--repeats", type=int, default=300, help="single-image predictions per input kind")
    ap.add_argument("--batch", type=int, default=256, help="files per predict_batch call")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    args = ap.parse_args(argv)

    from digitrec import mnist
    from digitrec.recognizer import Recognizer

    x, y = mnist.load()["test"]
    rng = np.random.default_rng(0)
    r = Recognizer.load(args.model, threads=args.threads)
    n_files = max(args.batch, 64)
    kinds = {"canvas 280×280 RGBA PNG": lambda d: (canvas_png(d), ".png"),
             "photo 512×512 JPEG": lambda d: (photo_jpeg(d, rng), ".jpg"),
             "MNIST-size 28×28 PNG": lambda d: (small_png(d), ".png")}
    results = {"command": "python benchmarks/predict_latency.py " + " ".join(argv or sys.argv[1:]),
               "model": r.name, "model_file": str(r.source), "ort_threads": args.threads,
               "python": platform.python_version(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "inputs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, make in kinds.items():
            paths, correct = [], 0
            for i in range(n_files):
                data, suffix = make(x[i])
                p = Path(tmp) / f"{abs(hash(kind)) % 1000}_{i}{suffix}"
                p.write_bytes(data)
                paths.append(p)
            for p in paths[:20]:  # warm-up
                r.predict(p)
            times, cpu = [], []
            for k in range(args.repeats):
                p = paths[k % len(paths)]
                c0, t0 = time.thread_time(), time.perf_counter()
                pred = r.predict(p)
                times.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
                correct += pred.label == y[k % len(paths)]
            t0 = time.perf_counter()
            batch = r.predict_batch(paths[:args.batch])
            batch_s = time.perf_counter() - t0
            results["inputs"][kind] = {
                "bytes_per_file": int(np.mean([p.stat().st_size for p in paths])),
                "single": percentiles(times), "single_cpu": percentiles(cpu), "single_accuracy": correct / args.repeats,
                "batch_files": args.batch, "batch_images_per_s": args.batch / batch_s,
                "batch_accuracy": float(np.mean([b.label == t for b, t in zip(batch, y[:args.batch])])),
            }
            s = results["inputs"][kind]["single"]
            print(f"{kind:26s} p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms  "
                  f"(CPU time p50 {results['inputs'][kind]['single_cpu']['p50_ms']:.2f} ms)  "
                  f"batch {results['inputs'][kind]['batch_images_per_s']:.0f} img/s")
    norm = x[:1024].astype(np.float32) / 255.0
    r.predict_normalized(norm[:64])
    one = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        r.predict_normalized(norm[i:i + 1])
        one.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    r.predict_normalized(norm)
    results["network_only"] = {"single": percentiles(one), "batch_1024_images_per_s": 1024 / (time.perf_counter() - t0)}
    results["load_average_at_end"] = os.getloadavg()
    results["goal_p50_ms"] = GOAL_P50_MS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "predict_latency.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Prediction latency: file -> label", "",
        f"Command: `{results['command']}`  ", f"Measured {results['started']} on {results['cpus']} CPUs "
        f"(load average at start {results['load_average_at_start'][0]:.2f}), model {r.name}, "
        f"ONNX Runtime threads {args.threads}. Goal: p50 ≤ {GOAL_P50_MS} ms.", "",
        "Wall-clock time per image, one at a time (the caller's thread; CPU time of that thread",
        "in brackets, which other jobs on the machine inflate less); batch: `predict_batch` on",
        f"{args.batch} files.", "",
        "| input | p50 ms | p90 ms | p99 ms | batch images/s |", "|---|---:|---:|---:|---:|",
    ]
    for kind, v in results["inputs"].items():
        s, c = v["single"], v["single_cpu"]
        lines.append(f"| {kind} | {s['p50_ms']:.2f} ({c['p50_ms']:.2f}) | {s['p90_ms']:.2f} ({c['p90_ms']:.2f}) | "
                     f"{s['p99_ms']:.2f} ({c['p99_ms']:.2f}) | {v['batch_images_per_s']:.0f} |")
    s = results["network_only"]["single"]
    lines.append(f"| network only (28×28 array) | {s['p50_ms']:.3f} | {s['p90_ms']:.3f} | {s['p99_ms']:.3f} | "
                 f"{results['network_only']['batch_1024_images_per_s']:.0f} |")
    (out / "predict_latency.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'predict_latency.json'} and {out / 'predict_latency.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
