"""OCR of numbers written on lined paper with thin grey lines, against the same digits without the lines.

    python benchmarks/ocr_lined.py [--per-style 3]

Each style is a 420 px wide page with two rows of five MNIST test digits (40 px tall) on lined
paper (a row on every second line): line spacing 40 or 60 px, lines 1 or 2 px wide and of grey 120, 160 or 200 (on white;
the digits are black), the digits standing 6 px clear of their line or reaching 2 px through
it, with or without a margin, the page level or turned by 0.7, 2 or 5 degrees, every second
page saved as JPEG. Each page is also drawn without any lines (same digits, same places), so
the figures differ only by the lines. Reads with the bundled OCR reader; a page counts when all
its digits are read right. Writes benchmarks/results/ocr_lined.{json,md}. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, machine, scanned, tally, write  # noqa: E402

STYLES = {"spacing": [40, 60], "line": [1, 2], "grey": [120, 160, 200], "through": [False, True],
          "margin": [False, True], "angle": [0, 0.7, 2, 5]}
WIDTH, SIZE = 420, 40  # the page's width, and the digits' size as a 28 px MNIST image (px)


def page(rows, spacing, line, grey, through, margin, angle, lined, jpeg, rng):
    """A white page with `rows` (lists of MNIST images) written on its lines (no lines unless `lined`)."""
    base = [30 + SIZE + 2 * r * spacing for r in range(len(rows))]  # each row's line (every second one)
    im = Image.new("L", (WIDTH, base[-1] + spacing), 255)
    draw = ImageDraw.Draw(im)
    if lined:
        for y in range(base[0] % spacing, im.height, spacing):
            draw.rectangle([0, y, WIDTH, y + line - 1], fill=grey)
        if margin:
            draw.rectangle([30, 0, 30 + line - 1, im.height], fill=grey)
    for row, y in zip(rows, base):
        for k, digit in enumerate(row):
            ink = Image.fromarray(digit).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
            dx, dy = (int(v) for v in rng.integers(-3, 4, size=2))
            bottom = y + (8 if through else -1)  # a 40 px MNIST digit's ink ends about 6 px above its image's bottom
            im.paste(Image.fromarray(255 - np.asarray(ink)), (50 + k * 72 + dx, bottom - SIZE + dy), ink)
    return scanned(im, angle, jpeg)


def pages(images, labels, st, k, lined, n):
    """The first `n` pages of style `st` (number `k`), lined or not, with their texts: the same
    digits and places either way; every second page saved as JPEG."""
    rng = np.random.default_rng(k)
    for t in range(n):
        picks = [rng.integers(len(images), size=5) for _ in range(2)]
        truth = "\n".join("".join(str(labels[i]) for i in p) for p in picks)
        yield page([[images[i] for i in p] for p in picks], **st, lined=lined, jpeg=t % 2 == 1, rng=rng), truth


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-style", type=int, default=3, help="pages per style")
    ap.add_argument("--out", help="output path without suffix (default: benchmarks/results/ocr_lined)")
    args = ap.parse_args(argv)

    from digitrec import mnist
    from digitrec.recognizer import Recognizer

    images, labels = mnist.load()["test"]
    reader = Recognizer.load(ocr=True)
    rows = []
    for k, style in enumerate(itertools.product(*STYLES.values())):
        st = dict(zip(STYLES, style))
        for lined in (True, False):
            for im, truth in pages(images, labels, st, k, lined, args.per_style):
                rows.append({**st, "kind": "lined" if lined else "without", "right": reader.read(im).text == truth})
    md = ["# OCR of numbers on lined paper with thin grey lines", "", f"Command: `{command()}`  ",
          f"Pages (two rows of five digits) read right, all digits, on lined paper and without the lines "
          f"(same digits, same places); {args.per_style} per style, bundled OCR reader.", "",
          "| subset | lined | without |", "| --- | --- | --- |"]
    subsets, table = tally(rows, STYLES, ("lined", "without"))
    record = {"command": command(), **machine(), "per_style": args.per_style, "subsets": subsets}
    write("ocr_lined", record, md + table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
