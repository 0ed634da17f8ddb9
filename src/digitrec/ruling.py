"""The printed lines of paper and forms, found and erased from an ink map: the closed boxes,
open boxes (`|_|`) and ticked lines of form fields, lined paper (with its margin), squared
paper, and a printed line to write on.

`erase_boxes(ink)` is the ink map without them; `rule_angle(ink)` is the angle they run at
(OCR turns the ink level by it first). Strokes that cross a line keep their pixels there.
This module knows nothing about digits or models; cutting and reading are `ocr.py`'s.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage

from .strokes import EIGHT, INK, components, horizontal_runs, leading, run_ids, vertical_runs

RULE = 10                # a printed box's sides, and the runs of its top and bottom, are at least twice this (px)
THIN = 8.0               # ... and its sides this many times as long as its lines are thick
EDGE = 0.8               # a box's top and bottom are at least this many times as long as its sides
PEN = 6.0                # ... which are at least this many times as long as the pen's strokes are wide
TICK = 8                 # the ticks of a comb (a line with short sides standing on it) are at least this tall (px)
RULE_MAX = 6.0           # boxes tilted up to this many degrees are found (on the ink turned level)
CROSS = 6                # a stroke crossing a printed line at most this thick (px) keeps the line's pixels there
RULED = 0.6              # a ruled line (lined paper, a line to write on) runs across this much of the image
FAINT = 0.6              # a ruled line found only with its rows joined (`_joined`) is fainter than this (writing: 1)
BRIDGE = 15 * RULE       # ... and its pieces are joined across gaps of up to this (px; a line turned 0.2°, `_bridged`)


def _adjacent(items: list, col) -> list[list]:
    """`items` in groups of neighbouring columns (`col(item)`), left to right: one printed line's width."""
    groups: list[list] = []
    for item in sorted(items, key=col):
        if groups and col(item) - col(groups[-1][-1]) <= 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _slack(pitch: float) -> float:
    """How far off its place on a pitch a side may stand: 2 px or 8% of the pitch."""
    return max(2.0, 0.08 * pitch)


def _on_pitch_from(x: float, origin: float, pitch: float) -> bool:
    """Whether column `x` stands a whole number of `pitch`es from `origin` (within `_slack`)."""
    steps = (x - origin) / pitch
    return abs(steps - round(steps)) * pitch <= _slack(pitch)


def erase_boxes(ink: np.ndarray) -> np.ndarray:
    """The ink map without the printed boxes of form fields (`_remove_boxes`, `_combs`) and the
    ruled lines of paper (`_remove_rules`), with their soft rims.

    Done before anything else, since a row of boxes would otherwise pass for the writing
    (its angle, its lines, its height). Where a stroke crosses a line, the line's pixels stay
    (`_crossings`); where the lines are fainter than the writing, the pixels of a line that are
    much darker than the line's own ink are the writing crossing it, and stay too. The ink map
    itself when there are none."""
    mask = ink > INK
    kept = _remove_rules(_remove_boxes(mask), mask, ink)
    if kept is mask:
        return ink
    kept |= _crossings(mask & ~kept, kept)
    lines = mask & ~kept
    if not lines.any():  # every pixel of them is a stroke crossing
        return ink
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
    underline) is not a side, nor is one that goes on more than 3 px above its top line (the
    side of an open box that a 7's bar meets: with the 7's stem they look like a box). The
    boxes must be level to within about half a degree (a tilted side is no single column of
    pixels, a tilted top no single run: `_unbox` turns them level first). Along one top
    line, only the sides at the boxes' pitch count (`_on_pitch`: a straight 1 that touches
    the top and the bottom of its box is off it). On squared paper each square is a box
    (`_segments`). Open boxes and combs of ticks (no top) are `_combs`' to find.
    """
    xs, tops, bottoms = vertical_runs(mask, TICK + 1)
    if not xs:
        return mask
    ids, length = run_ids(mask)
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
            thick_a = leading(run[a:] >= 2 * RULE)
            thick_b = leading(run[b::-1] >= 2 * RULE)
            need = EDGE * (b - a)
            if b - a < shortest - 4 or run[a:a + thick_a].max() < need or run[b - thick_b + 1:b + 1].max() < need:
                continue
            cols = mask[y0 + a:y0 + b + 1].mean(0) >= 0.9  # the side's own thickness: columns it fills
            wall = leading(cols[x:]) + leading(cols[x::-1]) - 1
            if b - a < THIN * max(thick_a, thick_b, wall):
                continue
            top_ids = {int(i) for i in near[a:a + thick_a].ravel() if i and length[i] >= need}
            bottom_ids = {int(i) for i in near[b - thick_b + 1:b + 1].ravel() if i and length[i] >= need}
            if len(segments) == 1 and y0 + a - top > 3:
                continue  # the side of an open box goes on above a stroke across it (a 7's bar)
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
    boxed, hidden = _on_pitch(sides, boxed)
    taken = {runs[i] for i in boxed}  # the rest may stand on a line without a top (`_combs`)
    rest = [r for r in zip(xs, tops, bottoms) if r not in taken]
    more, cells = _combs(mask, ids, length, *zip(*rest)) if rest else (set(), [])
    erase |= more
    if not boxed and not cells:
        return mask
    out = mask & ~np.isin(ids, list(erase))
    cells += [([sides[i][0]], *(runs[i][1:] if grid[i] else sides[i][1:3])) for i in boxed] + hidden
    for cols, top, bottom in cells:  # a side: its columns and the neighbouring ones that are part of the line
        for c in range(max(0, min(cols) - 1), min(w, max(cols) + 2)):
            if mask[top:bottom, c].sum() >= 0.9 * (bottom - top):
                out[top:bottom, c] = False
    return out


def _remove_rules(kept: np.ndarray, mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """`kept` (the stroke mask `mask` of `ink`, boxes erased) without ruled lines: lined paper's,
    a printed line to write on, and on such paper a margin or the other lines of squared paper.

    A ruled line is a straight, level line (`_ruled`) spanning at least RULED of the image's
    width; where there are such lines, a vertical line of the same kind spanning RULED of the
    height is a margin. Faint lines a little off level are found too (`_faint_ruled`).
    `kept` itself when there are none."""
    flat = _ruled(mask) | _faint_ruled(ink)
    if not flat.any():
        return kept
    return kept & ~flat & ~_ruled(mask.T).T & ~_faint_ruled(ink.T).T


def _faint_ruled(ink: np.ndarray) -> np.ndarray:
    """The stroke-mask pixels of `ink`'s faint horizontal ruled lines: the `_ruled` lines of
    `_joined(ink)` fainter than FAINT. A row of writing can pass for a line there (its strokes
    joined across short gaps), but it is darker."""
    return _ruled(_joined(ink), ink) & (ink > INK)


def _joined(ink: np.ndarray) -> np.ndarray:
    """A stroke mask in which a thin horizontal line fainter than INK in every row still runs on:
    the pixels whose ink, summed with the pixels above and below, passes INK, with gaps of up to
    RULE px along a row closed, and longer ones between faint pieces of a line (`_bridged`).
    A 1 px grey line turned a little lies half in each of two rows where it steps between them,
    and the ink map (`preprocess.to_ink`) may lose it there: at a 2° turn, for up to 16 px of
    every 29 where the line is 0.4 as dark as the writing."""
    band = ndimage.uniform_filter1d(ink, 3, axis=0) * 3 > INK
    return band | ndimage.binary_closing(band, structure=np.ones((1, 2 * RULE + 1), bool)) | _bridged(band, ink)


def _bridged(band: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The faint pieces of `band` with the gaps of up to BRIDGE px between two of them in a row
    filled, where the pieces are at least a third of the run that makes. A piece is a run of
    `band` at least RULE long along most of which `ink`, in its row and the 4 rows either side, is
    fainter than FAINT: no stroke of writing, nor the faint rim along one. Between 0.2° and 1° a
    faint 1 px line is lost for about half of every step between rows, 30-150 px (the ink map
    keeps no ink that far from ink above 0.35 unless it is above `preprocess.FADED` and joins
    it, `preprocess.to_ink`), in pieces about as long."""
    ids, length = run_ids(band)
    faint = np.bincount(ids.ravel(), (ndimage.maximum_filter1d(ink, 9, axis=0) < FAINT).ravel(), len(length))
    pieces = (length[ids] >= RULE) & (2 * faint[ids] > length[ids])
    gaps, length = run_ids(~pieces)
    bridge = length <= BRIDGE
    bridge[np.concatenate([[0], gaps[:, 0], gaps[:, -1]])] = False  # the pieces themselves; not a gap to an edge
    filled = pieces | bridge[gaps]
    ids, length = run_ids(filled)
    share = np.bincount(ids.ravel(), pieces.ravel(), len(length)) / np.maximum(length, 1)
    return filled & (share[ids] >= 1 / 3)


def _ruled(mask: np.ndarray, ink: np.ndarray | None = None) -> np.ndarray:
    """The pixels of `mask`'s horizontal ruled lines: horizontal runs longer than a digit's strokes
    (a quarter of the width, or 200 px), joined across a row's step (a line a little off level; the
    runs of one tilted by 0.2° are about 290 px long), together at least RULED of the width long
    and 30 times as long as they are thick (in most columns), less the columns where a stroke lies
    along a line (it keeps its pixels and the line's there). With `ink`, only lines whose
    darkest pixel (or the darkest next to one) is fainter than FAINT in over half of their inked
    columns: a printed line is evenly grey, and strokes crossing it or lying along it for a while
    darken few of its columns, while in every column of a row of writing, or of its rim, a
    stroke's dark core is near."""
    w = mask.shape[1]
    out = np.zeros_like(mask)
    if w < 6 * RULE:
        return out
    runs = horizontal_runs(mask, max(2 * RULE, min(w // 4, 200)))  # longer than digits' strokes
    if not runs.any():
        return out
    for c in components(ndimage.binary_dilation(runs, structure=np.ones((3, 1), bool))):
        if c.w < RULED * w:
            continue
        line = c.mask & runs[c.y0:c.y1, c.x0:c.x1]
        thick = line.sum(0)
        usual = float(np.median(thick[thick > 0]))
        if usual > c.w / 30:
            continue
        line &= thick <= 2 * usual + 1  # columns where a stroke lies along the line keep both
        if ink is not None:
            near = ndimage.binary_dilation(line, structure=np.ones((3, 1), bool))  # the rim of a stroke is near its core
            darkest = np.where(near, ink[c.y0:c.y1, c.x0:c.x1], 0.0).max(0)  # in each column
            darkest = darkest[darkest > INK]
            if not len(darkest) or np.mean(darkest < FAINT) <= 0.5:
                continue
        out[c.y0:c.y1, c.x0:c.x1] |= line
    return out


def _crossings(erased: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The pixels of erased lines that a stroke crosses: each run of `erased` pixels across a
    line (up or down through a horizontal line, sideways through a vertical one; at most
    CROSS px) with `kept` ink just before it and just after it (within a pixel either side)."""
    out = np.zeros_like(erased)
    for lines, ink, got in ((erased, kept, out), (erased.T, kept.T, out.T)):  # (a view: sets `out`)
        h, w = lines.shape
        xs, tops, bottoms = (np.array(v, int) for v in vertical_runs(lines, 1))
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


def _on_pitch(sides: list, boxed: set[int]) -> tuple[set[int], list]:
    """The box sides that are sides: along one top line, those at its boxes' pitch; and the walls
    of that pitch that no side stood for.

    The first and last side under a top line are its ends; the sides between them stand at a
    whole number of equal cells, at least 20 px and 0.6 of the sides' height wide, and the
    number of cells is the one that most of them fit. A stroke off that pitch (a 1 that
    touches the top and the bottom of its box) is no side. Where at least three walls set the
    pitch, a step of it without one is a wall that was not taken for a side (a stroke lying
    along the line beside it makes the line look too thick there); it is returned as (its
    columns, top, bottom), as wide as the others, to be erased where the ink fills it."""
    groups: dict[int, list[int]] = {}
    for i in boxed:
        groups.setdefault(min(sides[i][3]), []).append(i)
    keep, hidden = set(), []
    for members in groups.values():
        walls = _adjacent(members, lambda i: sides[i][0])  # the neighbouring columns of one side
        xs = [float(np.mean([sides[i][0] for i in w])) for w in walls]
        tall = float(np.median([sides[i][2] - sides[i][1] for i in members]))
        best, steps = [(walls[0], xs[0]), (walls[-1], xs[-1])], 1
        for n in itertools.count(1):  # cells
            cell = (xs[-1] - xs[0]) / n
            if cell < max(2 * RULE, 0.6 * tall):
                break
            on = [(w, x) for w, x in zip(walls, xs) if _on_pitch_from(x, xs[0], cell)]
            if len(on) > len(best):
                best, steps = on, n
        keep |= {i for w, _ in best for i in w}
        if len(best) < 3:
            continue
        width = int(np.median([len(w) for w, _ in best]))
        top, bottom = (int(np.median([sides[i][k] for w, _ in best for i in w])) for k in (1, 2))
        hidden += _unfound(xs[0], xs[-1], steps, [f for _, f in best], width, top, bottom)
    return keep, hidden


def _unfound(first: float, last: float, steps: int, found: list, width: int, top: int, bottom: int) -> list:
    """The walls at the steps of a pitch (`steps` equal cells from column `first` to `last`) where
    none of the columns `found` stands: (their columns, `width` wide, top, bottom), to be erased
    where the ink fills them (strokes along the line hid them)."""
    cell = (last - first) / steps
    out = []
    for k in range(1, steps):
        x = first + k * cell
        if all(abs(f - x) > _slack(cell) for f in found):
            x0 = round(x - (width - 1) / 2)
            out.append((list(range(x0, x0 + width)), top, bottom))
    return out


def _combs(mask: np.ndarray, ids, length, xs, tops, bottoms):
    """The open boxes of form fields: sides or ticks standing on a printed line, with nothing on top.

    A riser is a vertical run of pixels (one column, at least TICK long) that ends in a horizontal
    run at least 2 * RULE and EDGE times its height long (the base), or one row under it (a pixel
    of the base's blurred edge, when the lines were turned level); it is at most about two lines
    thick, and at least 3 times as tall as the base is thick. Risers on one base as tall as each
    other (within 2 px or 10% of the height that most of them are within 2 px of: printed ticks
    are alike) are
    - a comb's ticks, or its open boxes' sides (`|_|_|`), when at least three stand at a regular
      pitch of at least 2 * RULE (the columns of one thick stroke stand closer), at all but a
      third of its steps, and the base ends within a pitch of the outer ones (digits standing
      on a ruled line are no comb); risers taller than them on that pitch are ticks that a
      digit's stroke continues, and a step of the pitch with none is a tick that strokes hide
      (erased where the ink fills its columns, as `_on_pitch` does for closed boxes);
    - open boxes (`|_| |_|`) when two stand at the two ends of each of two or more bases of the same
      size on one row (the arms of a 4 on its bar are one `|_|` too), each with no ink just above
      it (a 0's sides bend on into its top); a box whose sides a digit's strokes go on from is
      one of them when two others alike are free.
    A 1 standing on an underline is one riser alone, and a 1 among a comb's ticks is off their
    pitch or height. Returns the bases' run ids and the risers' (columns, top, bottom) to erase,
    as `_remove_boxes` erases a box's top and sides.
    """
    risers: dict[int, list] = {}  # base run id (its last row) -> (x, top, height, base thickness, starts free)
    rows: dict[int, set] = {}     # ... -> the run ids of all its rows
    xs, tops, bottoms = np.array(xs), np.array(tops), np.array(bottoms)
    based = length[ids[bottoms - 1, xs]] >= 2 * RULE  # a riser ends in a long run
    blur = ~based & (length[ids[np.maximum(bottoms - 2, tops), xs]] >= 2 * RULE)  # ... or one row above
    bottoms, based = bottoms - blur, based | blur  # (a pixel of the base's blurred edge under it)
    for x, top, bottom in zip(xs[based].tolist(), tops[based].tolist(), bottoms[based].tolist()):
        col = length[ids[top:bottom, x]] >= 2 * RULE
        tb = leading(col[::-1])  # the base: the long rows it ends in
        hr = len(col) - tb        # (a digit's stroke may cross the riser above it)
        base = int(ids[bottom - 1, x])
        if hr < max(TICK, 3 * tb) or length[base] < EDGE * hr:
            continue
        cols = mask[top:top + hr, max(0, x - 4):x + 5].mean(0) >= 0.9
        k = x - max(0, x - 4)
        if leading(cols[k:]) + leading(cols[k::-1]) - 1 > 2 * tb + 2:
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
        ref = max(tall, key=lambda h: (sum(abs(g - h) <= 2 for g in tall), tall.count(h)))  # printed: alike
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
                    width = int(np.median([len(t) for t in on]))
                    cells += _unfound(*ends, slots - 1, [centre(t) for t in on], width, *side(on[-1], ref)[1:])
                    continue
        if len(ticks) >= 2:  # an open box: risers at the base's two ends (the taller one continued by a digit)
            _, top, height, tb, _ = ticks[0][0]
            left, right = min(r[0] for r in ticks[0]), max(r[0] for r in ticks[-1])
            span, ends, ref = right - left, max(3, 2 * tb), min(tall[0], tall[-1])
            free = all(any(r[4] for r in end) for end in (ticks[0], ticks[-1]))  # a 0's sides bend on into its top
            if left - row[0] <= ends and row[-1] - right <= ends and 2 * RULE <= span and ref <= 2.5 * span:
                pairs.append((base, left, top + height, ref, span, free, [side(t, ref) for t in (ticks[0], ticks[-1])]))
    for base, left, bottom, ref, span, free, sides in pairs:  # open boxes: several alike side by side in a row
        alike = sum(abs(x - left) >= span and abs(b - bottom) <= 2 and close(h, ref) and close(w, span) and f
                    for _, x, b, h, w, f, _ in pairs)
        if alike >= (1 if free else 2):  # a box whose sides a digit's strokes go on from, among free ones
            found.add(base)
            cells += sides
    return {i for base in found for i in rows[base]}, cells


def rule_angle(ink: np.ndarray) -> float:
    """Degrees the long straight strokes (printed lines) run off horizontal, within ±RULE_MAX.

    The angle at which the pixels of horizontal runs at least RULE long, projected along
    it, pile up most (the sum of squared counts per row: a line's pixels all fall in one row;
    each pixel is shared between the two rows it falls between, as a thin line's pixels may
    fall on either side of a row's edge).
    A tilted line's runs are still RULE long up to about 6° for a 2 px line. Without printed
    lines it is some angle of the writing's strokes: `_unbox` then finds no box either way."""
    ys, xs = np.nonzero(horizontal_runs(ink > INK, RULE))
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
