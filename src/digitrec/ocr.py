"""OCR of handwritten numbers: an image holding a line (or a few lines) of digits -> their strings.

`read(recognizer, image)` finds the ink (`preprocess.to_ink`, either polarity), cuts it into
digits and classifies each cut with the recognizer, in one batch per image:

0. the printed boxes of form fields (closed boxes, open ones and combs of ticks on a line),
   the lines of squared paper and of lined paper (with its margin), and a printed line to
   write on are erased (`erase_boxes`), on the ink turned level by their lines if they are
   tilted (`rule_angle`); without boxes, writing that runs uphill or
   downhill (a photo taken askew) is turned level: the angle is the median direction from
   each digit-sized component to its nearest neighbour;
1. connected components of the ink; underlines (long, thin) removed; specks dropped;
2. lines: components grouped by vertical overlap; small pieces (the detached hat of a 5,
   a 4's second stroke) join the line they sit in;
3. per line, components are ordered left to right; those wider than most single digits
   (touching or overlapping digits), and narrower ones that a model with a reject class
   (`digitrec train --reject`) calls "not one digit", get candidate cuts: least-ink paths
   from top to bottom, which may bend around strokes, and straight cuts at several
   slants; the pieces between cuts are "atoms";
4. every run of neighbouring atoms that could be one digit (width, gaps; whole
   components whose columns overlap, as broken strokes do) is normalized like MNIST
   (`preprocess.normalize_digit`) and classified;
5. a dynamic programme picks the split of the line into digits that the recognizer is
   most sure of (sum of -log p, plus penalties for fragments much shorter than the line,
   implausibly wide digits, each cut through a component, joining pieces across a gap and
   two digits sharing most of their columns, and a credit per digit, since a sum over
   fewer digits is smaller); a small piece may also be left out as noise.

Writing taller than about 64 px is scaled down first (MNIST digits are 20 px), which
also bounds the work on large images. Known limit: a classifier trained on whole digits
only is often as sure of a fragment as of one digit, and without a reject class also of
two touching digits (a 1 leaning on a 4 reads as a 4). The bundled models (OCR's own reader,
`assets/ocr.onnx`, and the one-digit default) have also learnt OCR's own cuts of synthetic
lines (`digitrec train --ocr-lines`, `ocrdata.py`), so they doubt fragments and merged
digits; strokes that cross, where no cut separates the two digits, remain the main error
on touching pairs (docs/ocr.md).

A digit whose probability among the ten digits is below the recognizer's
`min_confidence` reads as '?'.
Boxes are always in the input image's pixels (for turned writing, the upright box around the
turned one). This module knows nothing about model files or training; it is not a general text
OCR (digits only, lines within about 50° of horizontal).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

OCR_SIDE = 1600          # the ink map is computed at most this many pixels on the longer side
INK = 0.3                # ink above this is part of a stroke
SKIP_SMALL = 1.5         # cost of leaving a small piece out (noise, a dot), in -log p units
SKIP_OTHER = 8.0         # ... and any other piece (only when nothing reads it)
SHORT = 8.0              # penalty per unit of height below 0.7 of the line's digits (fragments)
WIDE = 4.0               # penalty per unit of width beyond 1.5 × its height or 1.3 × the line's height
OVERLAP = 4.0            # penalty per unit of column overlap beyond half between neighbouring digits
SLANT = 0.6              # straight cuts lean up to this many pixels sideways per pixel down
CUTS = 7.0               # candidate cuts kept per line height of a component's width
SPLIT_WIDTH = 0.95       # components at least this many line heights wide are candidates for cutting
FLAG_WIDTH = 0.45        # ... and narrower ones from this width on that the model calls "not one digit"
FLAG = 0.5               # ... that is, whose ten digit probabilities sum to less than this (a model
                         #   trained with a reject class, `digitrec train --reject`; others sum to 1)
PIECES = 0.7             # small pieces (each under 0.45 line heights) together this tall may be one digit
MAX_WIDTH = 1.6          # no digit is wider than this many line heights (digits vary ±20% in size)
CUT = 0.5                # cost of each cut through a component: splitting must buy this much certainty
DIGIT = 0.45             # credit per digit read: a sum of -log p favours fewer, merged digits without it
WORK_HEIGHT = 48         # writing taller than 4/3 of this is scaled down to it (MNIST needs 20 px)
MAX_MARKS = 1500         # more separate marks than this is not a few lines of digits (and too slow)
LEAN = 0.1               # cost of a diagonal step of a cut, against 1 per pixel of ink crossed
LEVEL_MIN = 8.0          # writing that runs at least this many degrees off horizontal is turned level
                         # (level lines of training digits read 4-8 degrees 15 times in 3,000; 8+: twice)
LEVEL_MAX = 50.0         # ... up to this many (a neighbour steeper than this is on another line)
RULE = 10                # a printed box's sides, and the runs of its top and bottom, are at least twice this (px)
THIN = 8.0               # ... and its sides this many times as long as its lines are thick
EDGE = 0.8               # a box's top and bottom are at least this many times as long as its sides
PEN = 6.0                # ... which are at least this many times as long as the pen's strokes are wide
TICK = 8                 # the ticks of a comb (a line with short sides standing on it) are at least this tall (px)
RULE_MAX = 6.0           # boxes tilted up to this many degrees are found (on the ink turned level)
CROSS = 6                # a stroke crossing a printed line at most this thick (px) keeps the line's pixels there
RULED = 0.6              # a ruled line (lined paper, a line to write on) runs across this much of the image
EIGHT = np.ones((3, 3), bool)


@dataclass
class OcrDigit:
    label: str                    # '0'-'9', or '?' when unsure
    confidence: float             # the recognizer's probability of its best guess
    box: list[int]                # [x0, y0, x1, y1] in image pixels, x1/y1 exclusive
    guess: int = -1               # the best guess, also for '?'

    def to_dict(self) -> dict:
        return {"label": self.label, "confidence": round(float(self.confidence), 4), "box": list(self.box)}


@dataclass
class OcrLine:
    digits: list[OcrDigit] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(d.label for d in self.digits)

    def to_dict(self) -> dict:
        return {"text": self.text, "digits": [d.to_dict() for d in self.digits]}


@dataclass
class OcrResult:
    lines: list[OcrLine]
    path: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict:
        return {"path": self.path, "text": self.text, "lines": [l.to_dict() for l in self.lines]}


# ------------------------------------------------------------------ segmentation pieces

@dataclass
class _Comp:
    """A connected component (or a cut of one): local mask and its place in the ink map."""
    y0: int
    x0: int
    mask: np.ndarray               # bool, local

    @property
    def y1(self): return self.y0 + self.mask.shape[0]

    @property
    def x1(self): return self.x0 + self.mask.shape[1]

    @property
    def h(self): return self.mask.shape[0]

    @property
    def w(self): return self.mask.shape[1]

    @property
    def area(self): return int(self.mask.sum())

    @property
    def cx(self): return self.x0 + self.w / 2

    @property
    def cy(self): return self.y0 + self.h / 2


def _components(mask: np.ndarray) -> list[_Comp]:
    labels, n = ndimage.label(mask, structure=EIGHT)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is not None:
            out.append(_Comp(sl[0].start, sl[1].start, labels[sl] == i))
    return out


def _typical_height(comps: list[_Comp]) -> float:
    """Median height of the sizeable, not line-like components."""
    if not comps:
        return 0.0
    big = max(c.area for c in comps)
    cand = [c.h for c in comps if c.area >= 0.1 * big and c.h >= 0.3 * c.w]
    return float(np.median(cand or [c.h for c in comps]))


def _run_ids(mask: np.ndarray):
    """Each pixel's horizontal run: (run id, 0 off the mask; each run's length, by id)."""
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    ids = np.cumsum(starts.ravel()).reshape(mask.shape) * mask
    length = np.bincount(ids.ravel())
    length[0] = 0
    return ids, length


def _horizontal_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """The pixels of horizontal runs at least `length` long (a 1×length opening, in O(pixels))."""
    ids, lengths = _run_ids(mask)
    return lengths[ids] >= length


def _remove_underlines(mask: np.ndarray, h_ref: float) -> np.ndarray:
    """Erase long thin horizontal strokes (underlines, ruled lines), touching digits or not."""
    length = max(10, int(h_ref))
    opened = _horizontal_runs(mask, length)
    if not opened.any():
        return mask
    # a little vertical growth catches the whole thickness of a slightly wavy line
    for c in _components(ndimage.binary_dilation(opened, structure=np.ones((3, 1), bool))):
        if c.w >= 2 * h_ref and c.h <= 0.35 * h_ref:
            region = mask[c.y0:c.y1, c.x0:c.x1]
            region &= ~c.mask
    return mask


def _leading(flags: np.ndarray) -> int:
    """How many of `flags` are true before the first false one."""
    return len(flags) if flags.all() else int(flags.argmin())


def _adjacent(items: list, col) -> list[list]:
    """`items` in groups of neighbouring columns (`col(item)`), left to right: one printed line's width."""
    groups: list[list] = []
    for item in sorted(items, key=col):
        if groups and col(item) - col(groups[-1][-1]) <= 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _on_pitch_from(x: float, origin: float, pitch: float) -> bool:
    """Whether column `x` stands a whole number of `pitch`es from `origin` (within 2 px or 8%)."""
    steps = (x - origin) / pitch
    return abs(steps - round(steps)) * pitch <= max(2.0, 0.08 * pitch)


def _vertical_runs(mask: np.ndarray, length: int):
    """Every vertical run of at least `length` pixels: lists (x, top, bottom), bottom exclusive."""
    m = np.zeros((mask.shape[0] + 2, mask.shape[1]), np.int8)
    m[1:-1] = mask
    d = np.diff(m, axis=0).T  # per column, +1 where a run starts, -1 past its end
    xs, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # the same order: column by column, top to bottom
    keep = ends - starts >= length
    return xs[keep].tolist(), starts[keep].tolist(), ends[keep].tolist()


def erase_boxes(ink: np.ndarray) -> np.ndarray:
    """The ink map without the printed boxes of form fields (`_remove_boxes`, `_combs`) and the
    ruled lines of paper (`_remove_rules`), with their soft rims.

    Done before anything else, since a row of boxes would otherwise pass for the writing
    (its angle, its lines, its height). Where a stroke crosses a line, the line's pixels stay
    (`_crossings`); where the lines are fainter than the writing, the pixels of a line that are
    much darker than the line's own ink are the writing crossing it, and stay too. The ink map
    itself when there are none."""
    mask = ink > INK
    kept = _remove_rules(_remove_boxes(mask), mask)
    if kept is mask:
        return ink
    kept |= _crossings(mask & ~kept, kept)
    lines = mask & ~kept
    level = float(np.median(ink[lines]))  # the lines' own ink
    crossing = lines & (ink > (level + 1.0) / 2 + 0.1)
    ink = ink.copy()
    ink[ndimage.binary_dilation(lines, structure=EIGHT) & ~kept & ~crossing] = 0.0
    return ink


def _remove_boxes(mask: np.ndarray) -> np.ndarray:
    """The stroke mask without the printed boxes of form fields, touching digits or not.

    A box side is a vertical run of pixels (one column, at least 2 * RULE long) that goes
    from one long horizontal run to another; each of the two is at least EDGE times as long
    as the side (a 7's stem meets only its own short bar) and the side is THIN times as long
    as the lines are thick (a thick pen's strokes are not lines). A box is two such sides
    joined by the same runs at the top and at the bottom. Its sides, and the runs of its top
    and bottom, are erased; a digit that touches or crosses them keeps the rest of its
    strokes. A vertical stroke that meets a line at one end only (a 1 standing on an
    underline) is not a side. The boxes must be level to within about half a degree (a
    tilted side is no single column of pixels, a tilted top no single run: `_unbox` turns
    them level first). Along one top line, only the sides at the boxes' pitch count
    (`_on_pitch`: a straight 1 that touches the top and the bottom of its box is off it).
    On squared paper each square is a box (`_segments`). Open boxes and combs of ticks (no
    top) are `_combs`' to find.
    """
    xs, tops, bottoms = _vertical_runs(mask, TICK + 1)
    if not xs:
        return mask
    ids, length = _run_ids(mask)
    # a box is much taller than the pen is wide (a thick pen's loop, with its hole, is not a box);
    # the median horizontal run is about the width of a stroke
    shortest = max(2 * RULE, PEN * float(np.median(length[1:])))  # (runs exist: xs is not empty)
    h, w = mask.shape
    sides = []  # (x, top, bottom, ids of the top line's runs, of the bottom line's runs)
    runs = []   # the vertical run of each side
    grid = []   # ... and whether it is a line of squared paper (erased whole, to the paper's edge)
    for x, top, bottom in zip(xs, tops, bottoms):
        if bottom - top < 2 * RULE:
            continue
        y0, x0 = max(0, top - 2), max(0, x - 2)
        near = ids[y0:min(h, bottom + 2), x0:x + 3]
        run = length[near].max(1)  # the longest horizontal run through the side, per row
        rows = np.flatnonzero(run >= 2 * RULE)
        if len(rows) < 2:
            continue
        segments = _segments(rows, run)
        for a, b in segments:
            # how thick each line is: its rows of long runs (a pen's curve is many such rows)
            thick_a = _leading(run[a:] >= 2 * RULE)
            thick_b = _leading(run[b::-1] >= 2 * RULE)
            need = EDGE * (b - a)
            if b - a < shortest - 4 or run[a:a + thick_a].max() < need or run[b - thick_b + 1:b + 1].max() < need:
                continue
            cols = mask[y0 + a:y0 + b + 1].mean(0) >= 0.9  # the side's own thickness: columns it fills
            wall = _leading(cols[x:]) + _leading(cols[x::-1]) - 1
            if b - a < THIN * max(thick_a, thick_b, wall):
                continue
            top_ids = {int(i) for i in near[a:a + thick_a].ravel() if i and length[i] >= need}
            bottom_ids = {int(i) for i in near[b - thick_b + 1:b + 1].ravel() if i and length[i] >= need}
            sides.append((x, y0 + a, y0 + b + 1, top_ids, bottom_ids))
            runs.append((x, top, bottom))
            grid.append(len(segments) > 1)
    by_top: dict[int, list[int]] = {}
    for i, side in enumerate(sides):
        for t in side[3]:
            by_top.setdefault(t, []).append(i)
    boxed, erase = set(), set()
    for i, (x, _, _, t1, b1) in enumerate(sides):  # two sides joined by the same top and bottom
        for j in {j for t in t1 for j in by_top[t]}:
            x2, _, _, t2, b2 = sides[j]
            if abs(x2 - x) > RULE and b1 & b2:
                boxed |= {i, j}
                erase |= t1 | t2 | b1 | b2
    boxed = _on_pitch(sides, boxed)
    taken = {runs[i] for i in boxed}  # the rest may stand on a line without a top (`_combs`)
    rest = [r for r in zip(xs, tops, bottoms) if r not in taken]
    more, cells = _combs(mask, ids, length, *zip(*rest)) if rest else (set(), [])
    erase |= more
    if not boxed and not cells:
        return mask
    out = mask & ~np.isin(ids, list(erase))
    cells += [([sides[i][0]], *(runs[i][1:] if grid[i] else sides[i][1:3])) for i in boxed]
    for cols, top, bottom in cells:  # a side: its columns and the neighbouring ones that are part of the line
        for c in range(max(0, min(cols) - 1), min(w, max(cols) + 2)):
            if mask[top:bottom, c].sum() >= 0.9 * (bottom - top):
                out[top:bottom, c] = False
    return out


def _remove_rules(kept: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`kept` (the stroke mask `mask`, boxes erased) without ruled lines: lined paper's, a printed
    line to write on, and on such paper a margin or the other lines of squared paper.

    A ruled line is a straight, level line (`_ruled`) spanning at least RULED of the image's
    width; where there are such lines, a vertical line of the same kind spanning RULED of the
    height is a margin. `kept` itself when there are none."""
    flat = _ruled(mask)
    if not flat.any():
        return kept
    return kept & ~flat & ~_ruled(mask.T).T


def _ruled(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask`'s horizontal ruled lines: horizontal runs longer than a digit's strokes
    (a quarter of the width, or 200 px), joined across a row's step (a line a little off level; the
    runs of one tilted by 0.2° are about 290 px long), together at least RULED of the width long
    and 30 times as long as they are thick (in most columns), less the columns where a stroke lies
    along a line (it keeps its pixels and the line's there)."""
    w = mask.shape[1]
    out = np.zeros_like(mask)
    if w < 6 * RULE:
        return out
    runs = _horizontal_runs(mask, max(2 * RULE, min(w // 4, 200)))  # longer than digits' strokes
    if not runs.any():
        return out
    for c in _components(ndimage.binary_dilation(runs, structure=np.ones((3, 1), bool))):
        if c.w < RULED * w:
            continue
        line = c.mask & runs[c.y0:c.y1, c.x0:c.x1]
        thick = line.sum(0)
        usual = float(np.median(thick[thick > 0]))
        if usual <= c.w / 30:  # columns where a stroke lies along the line keep both
            out[c.y0:c.y1, c.x0:c.x1] |= line & (thick <= 2 * usual + 1)
    return out


def _crossings(erased: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The pixels of erased lines that a stroke crosses: each run of `erased` pixels across a
    line (up or down through a horizontal line, sideways through a vertical one; at most
    CROSS px) with `kept` ink just before it and just after it (within a pixel either side)."""
    out = np.zeros_like(erased)
    for lines, ink, got in ((erased, kept, out), (erased.T, kept.T, out.T)):  # (a view: sets `out`)
        h, w = lines.shape
        xs, tops, bottoms = (np.array(v, int) for v in _vertical_runs(lines, 1))
        if not len(xs):
            continue
        near = [np.clip(xs + d, 0, w - 1) for d in (-1, 0, 1)]
        before = np.any([ink[np.maximum(tops - 1, 0), n] for n in near], 0) & (tops > 0)
        after = np.any([ink[np.minimum(bottoms, h - 1), n] for n in near], 0) & (bottoms < h)
        cross = before & after & (bottoms - tops <= CROSS)
        for x, top, bottom in zip(xs[cross], tops[cross], bottoms[cross]):
            got[top:bottom, x] = True
    return out


def _segments(rows: np.ndarray, run: np.ndarray) -> list[tuple[int, int]]:
    """Where a column of ink between long horizontal runs may be box sides: (first, last row).

    `rows` are the rows where the longest run through the column (`run`) is long. Normally
    one side, from the first line to the last. On squared paper the column crosses more lines
    as long as those (at least EDGE times the shorter of the first and last), each at most a
    third of that length below the one before: then each stretch between two of them is a side."""
    gaps = np.flatnonzero(np.diff(rows) > 1)  # between the lines (blocks of neighbouring rows)
    if len(gaps) < 2:
        return [(int(rows[0]), int(rows[-1]))]
    starts, ends = np.append(0, gaps + 1), np.append(gaps, len(rows) - 1)
    blocks = [(int(rows[i]), int(rows[j])) for i, j in zip(starts, ends)]
    first, last = blocks[0], blocks[-1]
    line = min(run[first[0]:first[1] + 1].max(), run[last[0]:last[1] + 1].max())
    grid = [blk for blk in blocks if run[blk[0]:blk[1] + 1].max() >= EDGE * line]
    if len(grid) > 2 and all(b[0] - a[0] <= line / 3 for a, b in zip(grid, grid[1:])):
        return [(a[0], b[1]) for a, b in zip(grid, grid[1:])]
    return [(first[0], last[1])]


def _on_pitch(sides: list, boxed: set[int]) -> set[int]:
    """The box sides that are sides: along one top line, those at its boxes' pitch.

    The first and last side under a top line are its ends; the sides between them stand at a
    whole number of equal cells, at least 20 px and 0.6 of the sides' height wide, and the
    number of cells is the one that most of them fit. A stroke off that pitch (a 1 that
    touches the top and the bottom of its box) is no side."""
    groups: dict[int, list[int]] = {}
    for i in boxed:
        groups.setdefault(min(sides[i][3]), []).append(i)
    keep = set()
    for members in groups.values():
        walls = _adjacent(members, lambda i: sides[i][0])  # the neighbouring columns of one side
        xs = [float(np.mean([sides[i][0] for i in w])) for w in walls]
        tall = float(np.median([sides[i][2] - sides[i][1] for i in members]))
        best = [walls[0], walls[-1]]
        for n in range(1, len(walls)):
            cell = (xs[-1] - xs[0]) / n
            if cell < max(2 * RULE, 0.6 * tall):
                break
            on = [w for w, x in zip(walls, xs) if _on_pitch_from(x, xs[0], cell)]
            if len(on) > len(best):
                best = on
        keep |= {i for w in best for i in w}
    return keep


def _combs(mask: np.ndarray, ids, length, xs, tops, bottoms):
    """The open boxes of form fields: sides or ticks standing on a printed line, with nothing on top.

    A riser is a vertical run of pixels (one column, at least TICK long) that ends in a horizontal
    run at least 2 * RULE and EDGE times its height long (the base); it is at most about two lines
    thick, and at least 3 times as tall as the base is thick. Risers on one base as tall as each
    other (within 2 px or 10%) are
    - a comb's ticks, or its open boxes' sides (`|_|_|`), when at least three stand at a regular
      pitch of at least 2 * RULE (the columns of one thick stroke stand closer), at all but a
      third of its steps, and the base ends within a pitch of the outer ones (digits standing
      on a ruled line are no comb); risers taller than them on that pitch are ticks that a
      digit's stroke continues;
    - open boxes (`|_| |_|`) when two stand at the two ends of each of two or more bases of the same
      size on one row (the arms of a 4 on its bar are one `|_|` too), each with no ink just above
      it (a 0's sides bend on into its top).
    A 1 standing on an underline is one riser alone, and a 1 among a comb's ticks is off their
    pitch or height. Returns the bases' run ids and the risers' (columns, top, bottom) to erase,
    as `_remove_boxes` erases a box's top and sides.
    """
    risers: dict[int, list] = {}  # base run id (its last row) -> (x, top, height, base thickness, starts free)
    rows: dict[int, set] = {}     # ... -> the run ids of all its rows
    xs, tops, bottoms = np.array(xs), np.array(tops), np.array(bottoms)
    based = length[ids[bottoms - 1, xs]] >= 2 * RULE  # a riser ends in a long run
    for x, top, bottom in zip(xs[based].tolist(), tops[based].tolist(), bottoms[based].tolist()):
        col = length[ids[top:bottom, x]] >= 2 * RULE
        tb = _leading(col[::-1])  # the base: the long rows it ends in
        hr = len(col) - tb        # (a digit's stroke may cross the riser above it)
        base = int(ids[bottom - 1, x])
        if hr < max(TICK, 3 * tb) or length[base] < EDGE * hr:
            continue
        cols = mask[top:top + hr, max(0, x - 4):x + 5].mean(0) >= 0.9
        k = x - max(0, x - 4)
        if _leading(cols[k:]) + _leading(cols[k::-1]) - 1 > 2 * tb + 2:
            continue  # thicker than two lines side by side
        free = not mask[max(0, top - 3):top, max(0, x - 1):x + 2].any()  # no stroke goes on above it
        risers.setdefault(base, []).append((x, top, hr, tb, free))
        rows.setdefault(base, set()).update(int(i) for i in ids[bottom - tb:bottom, x])

    def close(h, ref):  # as tall as each other
        return abs(h - ref) <= max(2, 0.1 * ref)

    def centre(t):
        return float(np.mean([r[0] for r in t]))

    def side(t, height):  # a tick's columns, from `height` above its base to the base
        bottom = max(r[1] + r[2] for r in t)
        return [r[0] for r in t], bottom - height, bottom

    found, cells, pairs = set(), [], []
    for base, rs in risers.items():
        last = rs[0][1] + rs[0][2] + rs[0][3] - 1  # the base's last row: every riser on it ends there
        row = np.flatnonzero(ids[last] == base)    # the base's columns
        ticks = _adjacent(rs, lambda r: r[0])  # the neighbouring columns of one riser are one tick
        tall = [max(r[2] for r in t) for t in ticks]
        ref = max(tall, key=lambda h: sum(close(g, h) for g in tall))
        like = [t for t, h in zip(ticks, tall) if close(h, ref)]
        if len(like) >= 3:  # a comb
            pitch = float(np.median(np.diff([centre(t) for t in like])))

            def fits(t, a):  # on the pitch from the tick at `a`
                return _on_pitch_from(centre(t), a, pitch)

            anchor = max((centre(t) for t in like), key=lambda a: sum(fits(t, a) for t in like))
            on = [t for t in like if fits(t, anchor)]
            if len(on) >= 3 and pitch >= max(2 * RULE, 0.6 * ref):  # cells wide enough for a digit
                on += [t for t, h in zip(ticks, tall) if h > ref and not close(h, ref) and fits(t, anchor)]
                ends = min(centre(t) for t in on), max(centre(t) for t in on)
                slots = round((ends[1] - ends[0]) / pitch) + 1
                # ticks at (nearly) every step of the pitch, and the base ending with them: not
                # digits standing on a longer line (ruled paper)
                filled = slots - len(on) <= slots // 3
                if filled and row[0] >= ends[0] - pitch - 3 and row[-1] <= ends[1] + pitch + 3:
                    found.add(base)
                    cells += [side(t, ref) for t in on]
                    continue
        if len(ticks) >= 2:  # an open box: risers at the base's two ends (the taller one continued by a digit)
            _, top, height, tb, _ = ticks[0][0]
            left, right = min(r[0] for r in ticks[0]), max(r[0] for r in ticks[-1])
            span, ends, ref = right - left, max(3, 2 * tb), min(tall[0], tall[-1])
            free = all(any(r[4] for r in end) for end in (ticks[0], ticks[-1]))  # a 0's sides bend on into its top
            if free and left - row[0] <= ends and row[-1] - right <= ends and 2 * RULE <= span and ref <= 2.5 * span:
                pairs.append((base, left, top + height, ref, span, [side(t, ref) for t in (ticks[0], ticks[-1])]))
    for base, left, bottom, ref, span, sides in pairs:  # open boxes: several alike side by side in a row
        if any(abs(x - left) >= span and abs(b - bottom) <= 2 and close(h, ref) and close(w, span)
               for _, x, b, h, w, _ in pairs):
            found.add(base)
            cells += sides
    return {i for base in found for i in rows[base]}, cells


def _lines(big: list[_Comp]) -> list[list[_Comp]]:
    """Group components into text lines by vertical overlap (union-find), top to bottom."""
    parent = list(range(len(big)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(big):
        for j in range(i + 1, len(big)):
            b = big[j]
            overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
            if overlap >= 0.4 * min(a.h, b.h):
                parent[find(i)] = find(j)
    groups: dict[int, list[_Comp]] = {}
    for i, c in enumerate(big):
        groups.setdefault(find(i), []).append(c)
    return sorted(groups.values(), key=lambda g: np.mean([c.cy for c in g]))


def _seams(ink: np.ndarray, h_line: float) -> list[np.ndarray]:
    """Candidate cuts of one component, each the x of its last left pixel in every row.

    Two kinds, pooled and ranked by the ink they cross: least-ink top-to-bottom paths
    (a diagonal step costs LEAN, so they bend around strokes) and straight lines at
    slants from -SLANT to +SLANT (for leaning digits that overlap in x). Only cuts that
    leave a real part of the ink on both sides count; they never cross each other, and
    each way of splitting the ink is kept once, cheapest first.
    """
    h, w = ink.shape
    if w < 0.45 * h_line or w < 6:
        return []
    cols, rows = np.arange(w), np.arange(h)
    total = ink[0].astype(np.float64).copy()
    back = np.zeros((h, w), np.int8)
    for y in range(1, h):
        left = np.r_[np.inf, total[:-1]] + LEAN
        right = np.r_[total[1:], np.inf] + LEAN
        stack = np.stack([left, total, right])
        arg = stack.argmin(0)
        back[y] = arg - 1
        total = ink[y] + stack[arg, cols]
    paths = np.empty((w, h), np.int64)  # one least-ink path ending at every bottom column
    paths[:, -1] = cols
    for y in range(h - 1, 0, -1):
        paths[:, y - 1] = paths[:, y] + back[y, paths[:, y]]
    costs = [total]
    pool = [paths]
    for slant in np.linspace(-SLANT, SLANT, 9):  # straight cuts: x = x_mid + slant * (y - h/2)
        lines = np.rint(cols[:, None] + slant * (rows[None, :] - h / 2)).astype(np.int64)
        inside = (lines >= 0) & (lines < w)
        crossed = np.where(inside, ink[rows[None, :], np.clip(lines, 0, w - 1)], 0.0).sum(1)
        pool.append(np.clip(lines, -1, w - 1))
        costs.append(crossed)
    paths, costs = np.concatenate(pool), np.concatenate(costs)
    stroke = ink > INK
    cum = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(stroke, axis=1)], axis=1)
    left_area = cum[rows[None, :], paths + 1].sum(1) / max(int(stroke.sum()), 1)
    rest = np.argsort(costs, kind="stable")  # cheapest first
    rest = rest[(left_area[rest] >= 0.04) & (left_area[rest] <= 0.96)]
    cap = max(2, int(CUTS * w / h_line))
    chosen: list[int] = []
    kept = np.empty((min(cap, len(rest)), h), np.int64)  # the chosen cuts
    while len(rest) and len(chosen) < cap:
        i, rest = rest[0], rest[1:]
        n = len(chosen)
        if n and ((paths[i] < kept[:n]).any(1) & (paths[i] > kept[:n]).any(1)).any():
            continue  # crosses a cheaper cut
        kept[n] = paths[i]
        chosen.append(int(i))
        rest = rest[np.abs(left_area[rest] - left_area[i]) >= 0.03]  # one cut per way of splitting the ink
    return [paths[i] for i in sorted(chosen, key=lambda i: left_area[i])]


@dataclass
class _Atom:
    comp: int                      # index of its component in the line
    left: np.ndarray | None        # the cut on its left (x per row, local to the component), None = edge
    right: np.ndarray | None


def _region(comp: _Comp, left, right) -> np.ndarray:
    """The component's pixels strictly right of `left` and up to `right` (local, bool)."""
    xs = np.arange(comp.w)[None, :]
    keep = comp.mask.copy()
    if left is not None:
        keep &= xs > left[:, None]
    if right is not None:
        keep &= xs <= right[:, None]
    return keep


@dataclass
class _Candidate:
    first: int
    last: int                      # atoms first..last (inclusive)
    box: tuple[int, int, int, int]  # in ink-map pixels, exclusive ends
    crop: np.ndarray | None        # 28×28 or None
    penalty: float
    mask: np.ndarray = field(repr=False)  # its strokes inside box (bool)


def _candidate(line: list[_Comp], atoms: list[_Atom], first: int, last: int,
               ink: np.ndarray, h_line: float, small: set[int]) -> _Candidate | None:
    """Atoms first..last as one digit: its mask, crop and shape penalty (None if implausible)."""
    # the first atom of each component in the run gives the left cut, the last the right cut
    bounds = {}
    for a in atoms[first:last + 1]:
        if a.comp not in bounds:
            bounds[a.comp] = [a.left, a.right]
        bounds[a.comp][1] = a.right
    comps = [line[i] for i in bounds]
    big = [i for i in bounds if id(line[i]) not in small]
    if len(big) > 1 and any(b is not None for i in big for b in bounds[i]):
        return None  # two digits' strokes may join, but never a cut piece with another digit
    y0, x0 = min(c.y0 for c in comps), min(c.x0 for c in comps)
    y1, x1 = max(c.y1 for c in comps), max(c.x1 for c in comps)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    cut_off = np.zeros_like(mask)
    for i, (left, right) in bounds.items():
        c = line[i]
        keep = _region(c, left, right)
        mask[c.y0 - y0:c.y1 - y0, c.x0 - x0:c.x1 - x0] |= keep
        cut_off[c.y0 - y0:c.y1 - y0, c.x0 - x0:c.x1 - x0] |= c.mask & ~keep
    if cut_off.any():  # slivers of the neighbour left behind by a cut go with it
        pieces, n = ndimage.label(mask, structure=EIGHT)
        if n > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            near = np.unique(pieces[ndimage.binary_dilation(cut_off, structure=EIGHT) & mask])
            small = [p for p in near if p and sizes[p] < 0.15 * sizes.max()]
            if small:
                mask &= ~np.isin(pieces, small)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    mask = mask[by0:by1, bx0:bx1]
    y0, x0 = y0 + by0, x0 + bx0
    h, w = mask.shape
    if w > MAX_WIDTH * h_line:
        return None
    # the soft rim of the strokes belongs to the digit too
    grown = ndimage.binary_dilation(np.pad(mask, 1), structure=EIGHT)
    ys0, xs0 = max(0, y0 - 1), max(0, x0 - 1)
    ys1, xs1 = min(ink.shape[0], y0 + h + 1), min(ink.shape[1], x0 + w + 1)
    g = grown[ys0 - (y0 - 1):ys1 - (y0 - 1), xs0 - (x0 - 1):xs1 - (x0 - 1)]
    from .preprocess import normalize_digit

    crop = normalize_digit(ink[ys0:ys1, xs0:xs1] * g)
    # shape priors: a digit is about as tall as its line's digits, and rarely much wider than tall;
    # a cut costs CUT (half on each side), as the classifier is often sure of a digit's fragments too
    cut_sides = sum(b is not None for i in big for b in bounds[i])
    penalty = (CUT / 2 * cut_sides + SHORT * max(0.0, 0.7 - h / h_line) + WIDE * max(0.0, w / max(h, 1) - 1.5)
               + WIDE * max(0.0, w / h_line - 1.3))
    # joining separate components: free where they overlap in x, costly across a gap
    cs = sorted(comps, key=lambda c: c.x0)
    reach = cs[0].x1
    for c in cs[1:]:
        gap = c.x0 - reach
        if gap > 0.12 * h_line:
            return None
        penalty += 6.0 * max(0.0, gap + 1) / h_line
        reach = max(reach, c.x1)
    return _Candidate(first, last, (int(x0), int(y0), int(x0 + w), int(y0 + h)), crop, penalty, mask)


def _plan_line(line: list[_Comp], small: set[int], ink: np.ndarray, h_line: float, flagged: set[int]):
    """Atoms of a line and every candidate digit made of neighbouring atoms."""
    line = sorted(line, key=lambda c: c.cx)
    small = {id(c) for c in line if id(c) in small}
    atoms: list[_Atom] = []
    for i, c in enumerate(line):
        local = ink[c.y0:c.y1, c.x0:c.x1] * c.mask
        # only a component wider than most single digits, or one the model calls "not one digit",
        # is cut: the classifier is often sure of a fragment too, so cutting everything would
        # split good digits
        wide = c.w >= SPLIT_WIDTH * h_line or id(c) in flagged
        cuts = _seams(local, h_line) if id(c) not in small and wide else []
        edges = [None] + cuts + [None]
        for left, right in zip(edges[:-1], edges[1:]):
            atoms.append(_Atom(i, left, right))
    cands = []
    for first in range(len(atoms)):
        for last in range(first, min(len(atoms), first + 12)):
            if atoms[last].comp != atoms[first].comp and line[atoms[last].comp].x0 - line[atoms[first].comp].x0 > MAX_WIDTH * h_line:
                break  # a longer run is only wider
            cand = _candidate(line, atoms, first, last, ink, h_line, small)
            if cand is None:
                continue
            if (all(id(line[a.comp]) in small for a in atoms[first:last + 1])
                    and cand.box[3] - cand.box[1] < PIECES * h_line):
                continue  # small pieces are a digit only together, as tall as one (a faint, broken stroke)
            cands.append(cand)
    skip = [SKIP_SMALL if id(line[a.comp]) in small else SKIP_OTHER for a in atoms]
    return atoms, cands, skip


def _overlap(a: _Candidate, b: _Candidate) -> float:
    """How much of the narrower of two neighbouring digits lies inside the other's columns."""
    inter = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    return max(0.0, inter) / max(1, min(a.box[2] - a.box[0], b.box[2] - b.box[0]))


def _best_path(n_atoms: int, cands: list[_Candidate], costs: list[float], skip: list[float]):
    """The cheapest cover of atoms 0..n-1 by candidate digits or skipped atoms.

    The cost of a cover: the digits' costs, the skipped atoms' costs, and OVERLAP for
    each pair of neighbouring digits that share most of their columns (one digit read twice).
    """
    items = [(c.first, c.last, costs[k], k) for k, c in enumerate(cands) if math.isfinite(costs[k])]
    items += [(j, j, skip[j], None) for j in range(n_atoms)]
    items.sort(key=lambda t: (t[0], t[1]))
    by_end: dict[int, list[int]] = {}
    best = [math.inf] * len(items)
    prev: list[int | None] = [None] * len(items)
    for i, (first, last, cost, k) in enumerate(items):
        if first == 0:
            best[i] = cost
        for m in by_end.get(first - 1, []):
            km = items[m][3]
            pair = 0.0 if k is None or km is None else OVERLAP * max(0.0, _overlap(cands[km], cands[k]) - 0.5)
            v = best[m] + pair + cost
            if v < best[i]:
                best[i], prev[i] = v, m
        by_end.setdefault(last, []).append(i)
    ends = by_end.get(n_atoms - 1, [])
    if not ends:
        return []
    i = min(ends, key=lambda e: best[e])
    chosen = []
    while i is not None:
        if items[i][3] is not None:
            chosen.append(items[i][3])
        i = prev[i]
    return chosen[::-1]


def digit_confidence(p: np.ndarray) -> float:
    """The best digit's probability among the ten: a crop chosen as a digit is read as '?' below
    min_confidence (the ten probabilities of a model with a reject class sum to less than 1)."""
    return float(p.max() / max(float(p.sum()), 1e-9))


def digit_char(p: np.ndarray, min_conf: float) -> str:
    """What OCR writes for a digit chosen with probabilities `p`: its label, or '?' below min_conf."""
    return str(int(p.argmax())) if digit_confidence(p) >= min_conf else "?"


def _not_one_digit(recognizer, lines, heights, small_ids, ink) -> set[int]:
    """ids of the components narrower than SPLIT_WIDTH that the model reads as "not one digit"
    (with no recognizer: all of them, as `ocrdata` wants every cut a model might ask for)."""
    narrow = [(c, h_line) for line, h_line in zip(lines, heights) for c in line
              if id(c) not in small_ids and FLAG_WIDTH * h_line <= c.w < SPLIT_WIDTH * h_line]
    if recognizer is None:
        return {id(c) for c, _ in narrow}
    comps, crops = [], []
    for c, h_line in narrow:
        cand = _candidate([c], [_Atom(0, None, None)], 0, 0, ink, h_line, set())
        if cand is not None and cand.crop is not None:
            comps.append(c)
            crops.append(cand.crop)
    if not crops:
        return set()
    total = recognizer.predict_normalized(np.stack(crops)).sum(1)
    return {id(c) for c, t in zip(comps, total) if t < FLAG}


def ink_map(image) -> tuple[np.ndarray, float, float]:
    """The ink map OCR works on, and the image pixels per ink-map pixel in x and in y."""
    from .preprocess import load_image, to_ink

    pil = load_image(image)
    ink = to_ink(pil, max_side=OCR_SIDE, speck_fraction=0.0)
    return ink, pil.width / ink.shape[1], pil.height / ink.shape[0]


def writing_angle(ink: np.ndarray) -> float:
    """Degrees the lines of writing run off horizontal (positive: uphill to the right), 0 if unclear.

    From each digit-sized component (height at least 0.45 of the typical one), the direction
    to its nearest such neighbour; neighbours steeper than LEVEL_MAX (the next line) are
    skipped. The median of at least two such directions is a rough angle, and the median
    direction between all pairs of components within 15° of it (those on one line) the angle.
    """
    comps = _components(ink > INK)
    h_ref = _typical_height(comps)
    big = [c for c in comps if c.h >= 0.45 * h_ref and c.area >= 6]
    if not 2 <= len(big) <= 300:     # more is not a few lines of digits (and pairs would cost memory)
        return 0.0
    centres = np.array([[c.x0 + c.w / 2, c.y0 + c.h / 2] for c in big])
    dx = centres[None, :, 0] - centres[:, None, 0]
    dy = centres[:, None, 1] - centres[None, :, 1]            # image rows grow downwards
    angles = (np.degrees(np.arctan2(dy, dx)) + 90.0) % 180.0 - 90.0   # directions, not arrows: -90..90
    dist = np.hypot(dx, dy)
    np.fill_diagonal(dist, np.inf)
    near = angles[np.arange(len(big)), dist.argmin(1)]
    near = near[np.abs(near) <= LEVEL_MAX]
    if len(near) < 2:
        return 0.0
    rough = float(np.median(near))
    # refined over every pair on the same line (within 15° of the rough angle): longer baselines
    same = np.triu(np.abs(angles - rough) <= 15.0, 1)
    return float(np.median(angles[same])) if same.any() else rough


def rule_angle(ink: np.ndarray) -> float:
    """Degrees the long straight strokes (printed lines) run off horizontal, within ±RULE_MAX.

    The angle at which the pixels of horizontal runs at least RULE long, projected along
    it, pile up most (the sum of squared counts per row: a line's pixels all fall in one row;
    each pixel is shared between the two rows it falls between, as a thin line's pixels may
    fall on either side of a row's edge).
    A tilted line's runs are still RULE long up to about 6° for a 2 px line. Without printed
    lines it is some angle of the writing's strokes: `_unbox` then finds no box either way."""
    ys, xs = np.nonzero(_horizontal_runs(ink > INK, RULE))
    if len(ys) < 4 * RULE:
        return 0.0
    step = max(1, len(ys) // 20000)
    ys, xs = ys[::step].astype(np.float64), xs[::step].astype(np.float64)

    def pile(deg: float) -> float:  # each pixel shared between the two rows it falls between
        rows = ys + xs * math.tan(math.radians(deg))
        rows -= rows.min()
        low = rows.astype(np.int64)
        up = rows - low
        counts = np.bincount(low, 1 - up, low.max() + 2) + np.bincount(low + 1, up, low.max() + 2)
        return float((counts * counts).sum())

    best = max(np.arange(-RULE_MAX, RULE_MAX + 1e-9, 0.25), key=pile)
    return float(max(np.arange(best - 0.3, best + 0.31, 0.02), key=pile))


def _level(ink: np.ndarray):
    """(ink turned level, a function mapping its (x, y) back to `ink`'s), or (ink, None) if level."""
    angle = writing_angle(ink)
    if abs(angle) < LEVEL_MIN:
        return ink, None
    return _turn(ink, angle)


def _unbox(ink: np.ndarray):
    """(the ink without its printed boxes and ruled lines, and `back` as in `_level`), or None if it has none.

    Where the printed lines run at least 0.2° off horizontal (`rule_angle`), boxes are looked
    for on the ink turned level by them, and the writing in them is taken to be as level as
    they are; otherwise (or if none are found there) on the ink as it is."""
    angle = rule_angle(ink)
    if abs(angle) >= 0.2:
        turned, back = _turn(ink, angle)
        erased = erase_boxes(turned)
        if erased is not turned:
            return erased, back
    erased = erase_boxes(ink)
    return (erased, None) if erased is not ink else None


def _turn(ink: np.ndarray, angle: float):
    """`ink` turned by -angle degrees (writing uphill by `angle` becomes level), and `back`."""
    from PIL import Image

    turned = np.asarray(Image.fromarray(ink, "F").rotate(-angle, Image.Resampling.BILINEAR, expand=True),
                        dtype=np.float32)
    (h, w), (th, tw) = ink.shape, turned.shape
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def back(x, y):  # turned image -> original: rotate by +angle about the centres (rows grow down)
        u, v = x - tw / 2, y - th / 2
        return w / 2 + c * u + s * v, h / 2 - s * u + c * v

    return turned, back


def segment(recognizer, ink: np.ndarray):
    """Steps 1-4 on an ink map: (the ink worked on, its (x, y) scale against `ink`, each line's plan).

    The recognizer only says which narrow components to cut (None: cut them all).
    The ink worked on is `ink` itself unless the writing is big (then it is scaled down);
    a plan is (atoms, candidate digits, costs of skipping each atom). None when there is no ink.
    """
    scale = (1.0, 1.0)
    mask = ink > INK
    comps = _components(mask)
    h_ref = _typical_height(comps)
    if not comps or h_ref < 4:
        return None
    if h_ref > WORK_HEIGHT * 4 / 3:  # big writing: work at about WORK_HEIGHT px per digit
        from PIL import Image

        f = WORK_HEIGHT / h_ref
        size = (max(1, round(ink.shape[1] * f)), max(1, round(ink.shape[0] * f)))
        scale = (size[0] / ink.shape[1], size[1] / ink.shape[0])
        ink = np.asarray(Image.fromarray(ink, "F").resize(size, Image.Resampling.BOX), dtype=np.float32)
        mask = ink > INK
        comps = _components(mask)
        h_ref = _typical_height(comps)
        if not comps or h_ref < 4:
            return None
    mask = _remove_underlines(mask, h_ref)
    comps = _components(mask)
    if not comps:
        return None
    h_ref = _typical_height(comps)
    speck = max(6.0, 0.012 * h_ref ** 2)
    comps = [c for c in comps if c.area >= speck and not (c.w >= 2 * h_ref and c.h <= 0.35 * h_ref)]
    if len(comps) > MAX_MARKS:
        from .errors import ImageError

        raise ImageError(f"the image holds {len(comps):,} separate marks; OCR reads a few lines of "
                         f"handwritten digits (at most {MAX_MARKS:,} marks), not a page or a texture")
    big = [c for c in comps if c.h >= 0.45 * h_ref]
    small = [c for c in comps if c.h < 0.45 * h_ref]
    lines = _lines(big)
    for c in small:  # a small piece joins the line it sits in, next to a big component
        best, dist = None, math.inf
        for line in lines:
            top, bottom = min(b.y0 for b in line), max(b.y1 for b in line)
            d = max(top - c.cy, c.cy - bottom, 0.0)
            dx = min(max(b.x0 - c.x1, c.x0 - b.x1, 0) for b in line)
            if d <= 0.3 * h_ref and dx <= 0.5 * h_ref and d < dist:
                best, dist = line, d
        if best is not None:
            best.append(c)
    small_ids = {id(c) for c in small}
    heights = []
    for line in lines:
        tall = [c.h for c in line if id(c) not in small_ids]
        heights.append(float(np.median([h for h in tall if h >= 0.6 * max(tall)])))  # not pieces of digits
    flagged = _not_one_digit(recognizer, lines, heights, small_ids, ink)
    return ink, scale, [_plan_line(line, small_ids, ink, h, flagged) for line, h in zip(lines, heights)]


def read(recognizer, image, path: str | None = None) -> OcrResult:
    """Read the numbers in `image` (path, bytes, file object, PIL image or array)."""
    if path is None and isinstance(image, (str, os.PathLike)):
        path = str(image)
    ink, sx, sy = ink_map(image)
    height, width = round(ink.shape[0] * sy), round(ink.shape[1] * sx)
    ink, back = _unbox(ink) or _level(ink)
    found = segment(recognizer, ink)
    if found is None:
        return OcrResult([], path)
    ink, scale, plans = found

    def to_image(x0, y0, x1, y1) -> list[int]:
        """A box on the ink worked on -> [x0, y0, x1, y1] in image pixels (upright around a turned one)."""
        xs, ys = np.array([x0, x1, x1, x0]) / scale[0], np.array([y0, y0, y1, y1]) / scale[1]
        if back is not None:
            xs, ys = back(xs, ys)
        return [max(0, int(xs.min() * sx)), max(0, int(ys.min() * sy)),
                min(width, int(math.ceil(xs.max() * sx))), min(height, int(math.ceil(ys.max() * sy)))]

    crops = [c.crop for _, cands, _ in plans for c in cands if c.crop is not None]
    probs = recognizer.predict_normalized(np.stack(crops)) if crops else np.zeros((0, 10), np.float32)
    min_conf = float(getattr(recognizer, "min_confidence", 0.6))
    out, row = [], 0
    for atoms, cands, skip in plans:
        costs, pick = [], []
        for c in cands:
            if c.crop is None:
                costs.append(math.inf)
                pick.append(None)
                continue
            p = probs[row]
            row += 1
            costs.append(-math.log(float(p.max()) + 1e-9) + c.penalty - DIGIT)
            pick.append(p)
        digits = []
        for k in _best_path(len(atoms), cands, costs, skip):
            p, (x0, y0, x1, y1) = pick[k], cands[k].box
            guess, conf = int(p.argmax()), digit_confidence(p)
            box = to_image(x0, y0, x1, y1)
            digits.append(OcrDigit(digit_char(p, min_conf), conf, box, guess))
        if digits:
            out.append(OcrLine(digits))
    return OcrResult(out, path)


# ------------------------------------------------------------------ output

def draw_overlay(image, result: OcrResult):
    """The image (RGB) with each digit's box and label drawn on it ('?' in orange)."""
    from PIL import ImageDraw, ImageFont

    from .preprocess import load_image

    im = load_image(image).convert("RGB")
    draw = ImageDraw.Draw(im)
    heights = [d.box[3] - d.box[1] for line in result.lines for d in line.digits]
    size = max(10, int(0.45 * float(np.median(heights)))) if heights else 12
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for line in result.lines:
        for d in line.digits:
            colour = (0, 160, 0) if d.label != "?" else (230, 120, 0)
            x0, y0, x1, y1 = d.box
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=colour, width=max(1, size // 8))
            draw.text((x0, max(0, y0 - size - 2)), f"{d.label} {d.confidence:.2f}", fill=colour, font=font)
    return im


def run_cli(images: list[str], model=None, as_json: bool = False, overlay: str | None = None,
            min_confidence: float = 0.6) -> int:
    """`digitrec ocr`: read each image, print its text (or JSON); exit status 1 if any image failed."""
    import json
    import sys
    from pathlib import Path

    from .errors import DigitrecError
    from .recognizer import Recognizer

    recognizer = Recognizer.load(model, min_confidence=min_confidence, ocr=True)
    if overlay and len(images) > 1:
        Path(overlay).mkdir(parents=True, exist_ok=True)
    results, failed = [], 0
    for path in images:
        try:
            result = read(recognizer, path)
        except DigitrecError as e:
            failed += 1
            print(f"digitrec: error: {e}", file=sys.stderr)
            results.append({"path": str(path), "error": str(e)})
            continue
        if overlay:
            target = Path(overlay) if len(images) == 1 else Path(overlay) / f"{Path(path).stem}.ocr.png"
            draw_overlay(path, result).save(target)
        results.append(result.to_dict())
        if not as_json:
            text = result.text.replace("\n", " | ") if result.lines else "(no digits)"
            print(f"{path}: {text}" if len(images) > 1 else (result.text or "(no digits)"))
    if as_json:
        print(json.dumps(results if len(images) > 1 else results[0], indent=2))
    return 1 if failed else 0
