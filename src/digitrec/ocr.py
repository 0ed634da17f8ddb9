"""OCR of handwritten numbers: an image holding a line (or a few lines) of digits -> their strings.

`read(recognizer, image)` finds the ink (`preprocess.to_ink`, either polarity), cuts it into
digits and classifies each cut with the recognizer, in one batch per image:

0. the printed boxes of form fields (closed boxes, open ones and combs of ticks on a line),
   the lines of squared paper and of lined paper (with its margin), and a printed line to
   write on are erased (`ruling.erase_boxes`), on the ink turned level by their lines if they
   are tilted (`ruling.rule_angle`); without boxes, writing that runs uphill or
   downhill (a photo taken askew) is turned level: the angle is the median direction from
   each digit-sized component to its nearest neighbour;
1. connected components of the ink; underlines (long, thin) removed; specks dropped; strips
   along the image's left or right edge, far taller than the writing (a desk), dropped;
2. lines: components grouped by vertical overlap; small pieces (the detached hat of a 5,
   a 4's second stroke) join the line they sit in, next to a digit, or anywhere on it when
   together as tall as a digit (one a thin pen broke apart); a wide, low one in the body of
   its line (a 2 or 5 drawn flat) is a digit alone;
3. per line, components are ordered left to right; those wider than most single digits
   (touching or overlapping digits), and narrower ones that a model with a reject class
   (`digitrec train --reject`) calls "not one digit", get candidate cuts: least-ink paths
   from top to bottom, which may bend around strokes, and straight cuts at several
   slants; the pieces between cuts are "atoms";
4. every run of neighbouring atoms that could be one digit (width, gaps, at most RUN atoms
   unless whole components; whole components whose columns overlap, as broken strokes do)
   is normalized like MNIST
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
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .ruling import erase_boxes, rule_angle
from .strokes import EIGHT, INK, Comp, components, horizontal_runs

OCR_SIDE = 1600          # the ink map is computed at most this many pixels on the longer side
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
FLAT_WIDTH = 0.6         # a piece this many line heights wide, in the body of its line, may be a digit
FLAT_HEIGHT = 0.25       # ... if at least this tall (not a dash): a 2 or 5 drawn wide and low
FOLDS = 0.1              # ... and crossing at least this share of its columns twice (a dash crosses once)
MAX_WIDTH = 1.6          # no digit is wider than this many line heights (digits vary ±20% in size)
RUN = 12                 # a digit is at most this many atoms, unless it is whole components
EDGE_TALL = 1.8          # a mark touching the image's edge this many line heights tall is not writing
CUT = 0.5                # cost of each cut through a component: splitting must buy this much certainty
DIGIT = 0.45             # credit per digit read: a sum of -log p favours fewer, merged digits without it
WORK_HEIGHT = 48         # writing taller than 4/3 of this is scaled down to it (MNIST needs 20 px)
MAX_MARKS = 1500         # more separate marks than this is not a few lines of digits (and too slow)
MAX_CANDIDATES = 5000    # ... nor more possible digits than this in one image (10-digit numbers: under 450)
LEAN = 0.1               # cost of a diagonal step of a cut, against 1 per pixel of ink crossed
LEVEL_MIN = 8.0          # writing that runs at least this many degrees off horizontal is turned level
                         # (level lines of training digits read 4-8 degrees 15 times in 3,000; 8+: twice)
LEVEL_MAX = 50.0         # ... up to this many (a neighbour steeper than this is on another line)


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

def _typical_height(comps: list[Comp]) -> float:
    """Median height of the sizeable, not line-like components."""
    if not comps:
        return 0.0
    big = max(c.area for c in comps)
    cand = [c.h for c in comps if c.area >= 0.1 * big and c.h >= 0.3 * c.w]
    return float(np.median(cand or [c.h for c in comps]))


def _remove_underlines(mask: np.ndarray, h_ref: float) -> np.ndarray:
    """Erase long thin horizontal strokes (underlines, ruled lines), touching digits or not."""
    length = max(10, int(h_ref))
    opened = horizontal_runs(mask, length)
    if not opened.any():
        return mask
    # a little vertical growth catches the whole thickness of a slightly wavy line
    for c in components(ndimage.binary_dilation(opened, structure=np.ones((3, 1), bool))):
        if c.w >= 2 * h_ref and c.h <= 0.35 * h_ref:
            region = mask[c.y0:c.y1, c.x0:c.x1]
            region &= ~c.mask
    return mask


def _edge_strip(c: Comp, shape: tuple[int, int], h_ref: float) -> bool:
    """A mark lying along the image's edge (at least 80% of its length on the border) and far taller
    than the writing (EDGE_TALL): the desk or the sheet's edge beside a photographed page, not a digit
    (a tight crop's digits touch the edge too, but are as tall as their neighbours; a digit joined to a
    line that runs off the image touches the edge only where the line does)."""
    if c.h < EDGE_TALL * h_ref:
        return False
    along = [c.mask[:, 0].mean() if c.x0 == 0 else 0.0, c.mask[:, -1].mean() if c.x1 == shape[1] else 0.0]
    return max(along) >= 0.8


def _flat_digit(c: Comp, body: list[Comp], top: float, h_line: float) -> bool:
    """Whether a piece shorter than a digit is one all the same: a 2 or 5 drawn wide and low (MNIST
    has them, 10-13 px tall of 20). It is as wide as most digits and folds back on itself (a dash or
    a bar does not, however thick or slanted); it sits in the body of its line, not on top of it (as
    a 5's hat or a 7's bar does), and clear of its neighbours' columns."""
    if not (c.w >= FLAT_WIDTH * h_line and c.h >= FLAT_HEIGHT * h_line and c.y0 >= top + 0.1 * h_line
            and all(c.x0 >= b.x1 or c.x1 <= b.x0 for b in body)):
        return False
    runs = (np.diff(c.mask.astype(np.int8), axis=0, prepend=0) == 1).sum(0)  # strokes each column crosses
    return float(np.mean(runs >= 2)) >= FOLDS


def _lines(big: list[Comp]) -> list[list[Comp]]:
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
    groups: dict[int, list[Comp]] = {}
    for i, c in enumerate(big):
        groups.setdefault(find(i), []).append(c)
    return sorted(groups.values(), key=lambda g: np.mean([c.cy for c in g]))


def _tall_groups(small: list[Comp], h_ref: float) -> set[int]:
    """ids of the small pieces that, with others sharing their columns, stand as tall as a digit
    (PIECES of h_ref): a digit broken into pieces by a thin pen, each too short to be one alone
    (a 3 in two halves, a 5's hat and body). They join their line even when far from the big
    components, as a whole digit would (a dot or a hat alone must be next to one)."""
    if len(small) < 2:
        return set()
    x0, x1 = np.array([c.x0 for c in small]), np.array([c.x1 for c in small])
    y0, y1 = np.array([c.y0 for c in small]), np.array([c.y1 for c in small])
    near = ((np.minimum(x1[:, None], x1[None]) > np.maximum(x0[:, None], x0[None]))  # shared columns
            & (np.maximum(y0[:, None], y0[None]) - np.minimum(y1[:, None], y1[None]) <= 0.3 * h_ref))
    from scipy.sparse.csgraph import connected_components

    n, group = connected_components(near, directed=False)
    tall = [g for g in range(n) if (group == g).sum() > 1
            and y1[group == g].max() - y0[group == g].min() >= PIECES * h_ref]
    return {id(c) for c, g in zip(small, group) if g in tall}


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


def _region(comp: Comp, left, right) -> np.ndarray:
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


def _candidate(line: list[Comp], atoms: list[_Atom], first: int, last: int,
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


@dataclass
class _Budget:
    """What reading one image may still spend: possible digits, and time."""
    candidates: int = MAX_CANDIDATES
    deadline: float | None = None  # time.monotonic() past which reading stops (a server's timeout)

    def spend(self) -> None:
        """One more possible digit: an ImageError past MAX_CANDIDATES, a TimeoutError past the deadline."""
        self.candidates -= 1
        if self.candidates < 0:  # grain, a texture or a page of text: reading it would take minutes
            from .errors import ImageError

            raise ImageError(f"the image holds more than {MAX_CANDIDATES:,} possible digits; OCR reads a "
                             "few lines of handwritten digits, not a texture, a grainy blank or a page of text")
        _in_time(self.deadline)


def _in_time(deadline: float | None) -> None:
    """A TimeoutError once time.monotonic() is past `deadline` (None: no limit)."""
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError("reading the image took longer than allowed")


def _plan_line(line: list[Comp], small: set[int], ink: np.ndarray, h_line: float, flagged: set[int],
               budget: _Budget):
    """Atoms of a line and every candidate digit made of neighbouring atoms (`budget`: what the
    image may still spend, spent here)."""
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
        for last in range(first, len(atoms)):
            if atoms[last].comp != atoms[first].comp and line[atoms[last].comp].x0 - line[atoms[first].comp].x0 > MAX_WIDTH * h_line:
                break  # a longer run is only wider
            if last - first >= RUN and not (atoms[first].left is None and atoms[last].right is None):
                continue  # long runs only as whole components (a digit broken in two, each piece cut up)
            budget.spend()
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
    comps = components(ink > INK)
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


def segment(recognizer, ink: np.ndarray, deadline: float | None = None):
    """Steps 1-4 on an ink map: (the ink worked on, its (x, y) scale against `ink`, each line's plan).

    The recognizer only says which narrow components to cut (None: cut them all).
    Past `deadline` (a time.monotonic() value) it stops with a TimeoutError.
    The ink worked on is `ink` itself unless the writing is big (then it is scaled down);
    a plan is (atoms, candidate digits, costs of skipping each atom). None when there is no ink.
    """
    scale = (1.0, 1.0)
    mask = ink > INK
    comps = components(mask)
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
        comps = components(mask)
        h_ref = _typical_height(comps)
        if not comps or h_ref < 4:
            return None
    mask = _remove_underlines(mask, h_ref)
    comps = components(mask)
    if not comps:
        return None
    h_ref = _typical_height(comps)
    speck = max(6.0, 0.012 * h_ref ** 2)
    comps = [c for c in comps if c.area >= speck and not (c.w >= 2 * h_ref and c.h <= 0.35 * h_ref)
             and not _edge_strip(c, mask.shape, h_ref)]
    if len(comps) > MAX_MARKS:
        from .errors import ImageError

        raise ImageError(f"the image holds {len(comps):,} separate marks; OCR reads a few lines of "
                         f"handwritten digits (at most {MAX_MARKS:,} marks), not a page or a texture")
    big = [c for c in comps if c.h >= 0.45 * h_ref]
    small = [c for c in comps if c.h < 0.45 * h_ref]
    _in_time(deadline)
    lines = _lines(big)
    _in_time(deadline)
    tall = _tall_groups(small, h_ref)
    for c in small:  # a small piece joins the line it sits in, next to a big component
        best, dist = None, math.inf
        for line in lines:
            top, bottom = min(b.y0 for b in line), max(b.y1 for b in line)
            d = max(top - c.cy, c.cy - bottom, 0.0)
            dx = min(max(b.x0 - c.x1, c.x0 - b.x1, 0) for b in line)
            # ... or anywhere along it when it is part of a digit broken into small pieces
            if d <= 0.3 * h_ref and (dx <= 0.5 * h_ref or id(c) in tall) and d < dist:
                best, dist = line, d
        if best is not None:
            best.append(c)
    small_ids = {id(c) for c in small}
    heights = []
    for line in lines:
        body = [c for c in line if id(c) not in small_ids]
        tall = [c.h for c in body]
        heights.append(float(np.median([h for h in tall if h >= 0.6 * max(tall)])))  # not pieces of digits
        top = float(np.median([c.y0 for c in body]))
        small_ids -= {id(c) for c in line if id(c) in small_ids and _flat_digit(c, body, top, heights[-1])}
    _in_time(deadline)
    flagged = _not_one_digit(recognizer, lines, heights, small_ids, ink)
    budget = _Budget(deadline=deadline)
    return ink, scale, [_plan_line(line, small_ids, ink, h, flagged, budget) for line, h in zip(lines, heights)]


def read(recognizer, image, path: str | None = None, deadline: float | None = None) -> OcrResult:
    """Read the numbers in `image` (path, bytes, file object, PIL image or array). Past `deadline`
    (a time.monotonic() value: a server's time limit) it stops with a TimeoutError, not reading on
    for a client that has had its answer."""
    if path is None and isinstance(image, (str, os.PathLike)):
        path = str(image)
    ink, sx, sy = ink_map(image)
    height, width = round(ink.shape[0] * sy), round(ink.shape[1] * sx)
    _in_time(deadline)
    ink, back = _unbox(ink) or _level(ink)
    _in_time(deadline)
    found = segment(recognizer, ink, deadline)
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
    _in_time(deadline)
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
    """`digitrec ocr`: read each image (files, folders searched recursively, globs: as `predict`), print
    its text (or JSON); exit status 1 if any image failed. One input file prints its text alone."""
    import json
    import sys
    from pathlib import Path

    from .errors import DigitrecError
    from .predict import IMAGE_SUFFIXES, expand, names_in, unique_name
    from .recognizer import Recognizer

    recognizer = Recognizer.load(model, min_confidence=min_confidence, ocr=True)
    files = expand(images)
    single = len(images) == 1 and [f for f, _ in files] == images  # a file named as it is, not a folder's
    into_folder = overlay and (not single or Path(overlay).is_dir())  # one overlay per image, in that folder
    if into_folder:
        try:
            Path(overlay).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DigitrecError(f"--overlay {overlay}: cannot create the folder ({e.strerror or e})") from e
    elif overlay and Path(overlay).suffix.lower() not in IMAGE_SUFFIXES:
        raise DigitrecError(f"--overlay {overlay}: name the image file to write (.png, .jpg, ...) or a folder")
    elif overlay and Path(overlay).exists() and Path(overlay).resolve() == Path(images[0]).resolve():
        raise DigitrecError(f"--overlay {overlay}: that is the input image; name another file to write")
    results, failed = [], 0
    used = names_in(Path(overlay), files) if into_folder else set()  # never write over an input
    for path, error in files:
        try:
            if error:
                raise DigitrecError(f"{path}: {error}")
            result = read(recognizer, path)
        except DigitrecError as e:
            failed += 1
            print(f"digitrec: error: {e}", file=sys.stderr)
            results.append({"path": str(path), "error": str(e)})
            continue
        if overlay:
            target = Path(overlay)
            if into_folder:  # never two overlays with the same name
                target = target / unique_name(path, ".ocr.png", used)
            try:
                draw_overlay(path, result).save(target)
            except OSError as e:
                raise DigitrecError(f"--overlay {target}: cannot write it ({e.strerror or e})") from e
        results.append(result.to_dict())
        if not as_json:
            text = result.text.replace("\n", " | ") if result.lines else "(no digits)"
            print(text if single else f"{path}: {text}")
    if as_json:
        print(json.dumps(results[0] if single else results, indent=2))
    return 1 if failed else 0
