"""OCR of numbers written in printed boxes (form fields), against the same digits without the boxes.

    python benchmarks/ocr_boxes.py [--per-style 3] [--figure PNG]

Each style is a row (or two rows) of five boxes with one MNIST test digit in each: boxes of
40 or 60 px, lines 1-3 px wide, a comb (boxes side by side) or boxes 8 px apart, digits
0.9-1.35 times the box size as a 28 px MNIST image (so the larger ones touch or cross the
lines), the sheet level or turned by 0.7, 2 or 5 degrees, every second image saved as JPEG.
Each sheet is drawn with five kinds of field (closed boxes; open boxes, `|_|`; a line with
ticks a third of the box tall; lined paper: a line across the sheet under each row, and a
margin; squared paper: squares of the box size over the whole sheet) and without any (same
digits, same places), so the figures differ only by the field's lines. Reads with the bundled
OCR reader; a sheet counts when all its digits are read right. Writes
benchmarks/results/ocr_boxes.{json,md}. Not a test.
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

FIELDS = ("box", "open", "ticks", "ruled", "squared")  # closed boxes, open boxes |_|, a line with ticks,
# lined paper (a line under each row across the sheet, and a margin), squared paper (squares of the box size)
STYLES = {"cell": [40, 60], "line": [1, 2, 3], "gap": [0, 8], "size": [0.9, 1.15, 1.35], "angle": [0, 0.7, 2, 5],
          "rows": [1, 2]}


def sheet(images, rows, cell, line, gap, size, angle, field, jpeg, rng):
    """A grey sheet with `rows` (lists of MNIST images) written in fields of a kind (None: no lines)."""
    n = max(len(r) for r in rows)
    im = Image.new("L", (n * (cell + gap) + 40, len(rows) * (cell + 30) + 20), 255)
    draw = ImageDraw.Draw(im)
    if field == "ruled":
        for y in range(20 + cell - line + 1, im.height, cell + 30):  # under each row
            draw.rectangle([0, y, im.width, y + line - 1], fill=40)
        draw.rectangle([10, 0, 10 + line - 1, im.height], fill=40)
    elif field == "squared":
        for v in range(20 % cell, max(im.size), cell):
            draw.rectangle([v, 0, v + line - 1, im.height], fill=40)
            draw.rectangle([0, v, im.width, v + line - 1], fill=40)
    tick = {"box": cell, "open": cell, "ticks": cell // 3}.get(field, 0)  # how tall the sides are
    for r, row in enumerate(rows):
        y0 = 20 + r * (cell + 30)
        for k, digit in enumerate(row):
            x = 20 + k * (cell + gap)
            if field == "box":
                draw.rectangle([x, y0, x + cell, y0 + cell], outline=40, width=line)
            elif field in ("open", "ticks"):
                draw.rectangle([x, y0 + cell - line + 1, x + cell, y0 + cell], fill=40)
                for side in (x, x + cell - line + 1):
                    draw.rectangle([side, y0 + cell - tick, side + line - 1, y0 + cell], fill=40)
            s = int(cell * size)
            ink = Image.fromarray(digit).resize((s, s), Image.Resampling.BILINEAR)
            dx, dy = (int(v) for v in rng.integers(-3, 4, size=2))
            im.paste(Image.fromarray(255 - np.asarray(ink)), (x + cell // 2 - s // 2 + dx, y0 + cell // 2 - s // 2 + dy), ink)
    return scanned(im, angle, jpeg)


def sheets(images, labels, st, k, field, n):
    """The first `n` sheets of style `st` (number `k`) in fields of a kind, with their texts: the
    same digits and places in every kind of field; every second sheet saved as JPEG."""
    rng = np.random.default_rng(k)
    for t in range(n):
        picks = [rng.integers(len(images), size=5) for _ in range(st["rows"])]
        truth = "\n".join("".join(str(labels[i]) for i in p) for p in picks)
        yield sheet(images, [[images[i] for i in p] for p in picks], st["cell"], st["line"], st["gap"],
                    st["size"], st["angle"], field, t % 2 == 1, rng), truth


FIGURE = dict(cell=60, line=2, gap=0, size=1.15, angle=2, rows=1)  # the style of --figure


def figure(images, labels, reader, st, k, path) -> int:
    """The style's first sheet in each kind of field, read by OCR, one under the other."""
    from digitrec.ocr import draw_overlay

    shots = []
    for field in FIELDS:
        im, _ = next(sheets(images, labels, st, k, field, 1))
        shots.append(draw_overlay(im, reader.read(im)))
    out = Image.new("RGB", (max(s.width for s in shots), sum(s.height for s in shots)), "white")
    y = 0
    for s in shots:
        out.paste(s, (0, y))
        y += s.height
    out.save(path, optimize=True)
    print(path)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-style", type=int, default=3, help="sheets per style")
    ap.add_argument("--out", help="output path without suffix (default: benchmarks/results/ocr_boxes)")
    ap.add_argument("--figure", metavar="PNG", help="only draw one style's first sheet in each kind of field, "
                    "read, with OCR's boxes and labels on it (docs/img/form_fields.png), and stop")
    args = ap.parse_args(argv)

    from digitrec import mnist
    from digitrec.recognizer import Recognizer

    images, labels = mnist.load()["test"]
    reader = Recognizer.load(ocr=True)
    rows = []
    for k, style in enumerate(itertools.product(*STYLES.values())):
        st = dict(zip(STYLES, style))
        if args.figure:
            if st == FIGURE:
                return figure(images, labels, reader, st, k, args.figure)
            continue
        for field in (*FIELDS, None):
            for im, truth in sheets(images, labels, st, k, field, args.per_style):
                rows.append({**st, "kind": field or "without", "right": reader.read(im).text == truth})
    md = ["# OCR of numbers in printed boxes", "", f"Command: `{command()}`  ",
          f"Sheets read right (all digits) in closed boxes, open boxes (`|_|`), on a line with ticks, on lined "
          f"paper with a margin, on squared paper (squares of the box size), and without any lines (same digits, "
          f"same places); {args.per_style} per style, bundled OCR reader.", "",
          "| subset | closed boxes | open boxes | ticks | lined paper | squared paper | without |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    subsets, table = tally(rows, STYLES, (*FIELDS, "without"))
    record = {"command": command(), **machine(), "per_style": args.per_style, "subsets": subsets}
    write("ocr_boxes", record, md + table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
