"""OCR latency per image: PNG bytes of a benchmark number -> its text, for several readers side by side.

    python benchmarks/ocr_latency.py [--models default,ocr] [--n 100] [--rounds 3]

Reads the first N numbers of `digitrec ocr-bench` seed 0 (5 digits, half with touching
pairs), given as PNG bytes, one image at a time with `digitrec.ocr.read` (decode, ink map,
segmentation, classification), with each reader in turn, round after round in one process,
so the readers are compared under the same load. Readers: `default` (the bundled paper CNN),
`ocr` (the bundled OCR reader) or a model path. Reports the median over rounds of the mean
milliseconds per image, the ratio to the first reader, and each reader's sequence accuracy
on these numbers. Writes benchmarks/results/ocr_latency.{json,md}. Not a test.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, machine, write  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="default,ocr", help="comma-separated: default, ocr or model paths")
    ap.add_argument("--n", type=int, default=100, help="numbers to read per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="output path without suffix (default: benchmarks/results/ocr_latency)")
    args = ap.parse_args(argv)

    from digitrec.ocr import read
    from digitrec.ocrbench import BenchConfig, generate
    from digitrec.recognizer import Recognizer

    samples = list(generate(BenchConfig(n=args.n, length=(5, 5), touching_share=0.5, seed=0)))
    pngs = []
    for s in samples:
        buf = io.BytesIO()
        s.image.save(buf, "PNG")
        pngs.append(buf.getvalue())
    names = args.models.split(",")
    readers = {m: Recognizer.load(None if m in ("default", "ocr") else m, ocr=m == "ocr") for m in names}
    times = {m: [] for m in names}
    right = {}
    for m, r in readers.items():  # warm-up, and each reader's accuracy on these numbers
        right[m] = sum(read(r, b).text == s.text for b, s in zip(pngs, samples))
    for _ in range(args.rounds):
        for m, r in readers.items():
            t0 = time.perf_counter()
            for b in pngs:
                read(r, b)
            times[m].append((time.perf_counter() - t0) / len(pngs) * 1000)
    med = {m: float(np.median(v)) for m, v in times.items()}
    record = {"command": command(), **machine(), "n": args.n, "rounds": args.rounds,
              "readers": {m: {"model": readers[m].name, "source": readers[m].source, "ms_per_image_rounds": times[m],
                              "ms_per_image_median": med[m], "ratio_to_first": med[m] / med[names[0]],
                              "sequence_accuracy": right[m] / args.n} for m in names}}
    md = ["# OCR latency per 5-digit number (PNG bytes -> text, one thread)", "",
          f"Command: `{record['command']}`  ", f"Measured {record['date_utc']} UTC on {record['machine']} "
          f"(load average {record['load_average'][0]:.2f}), {args.n} numbers of ocr-bench seed 0, "
          f"median of {args.rounds} rounds.", "",
          "| reader | model | ms per image | ratio | sequence accuracy |", "| --- | --- | --- | --- | --- |"]
    md += [f"| {m} | {readers[m].name} | {med[m]:.1f} | {med[m] / med[names[0]]:.2f}× | {right[m] / args.n:.0%} |"
           for m in names]
    write("ocr_latency", record, md, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
