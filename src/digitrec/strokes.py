"""The strokes of an ink map as pixel masks: the ink threshold, connected components, and
horizontal and vertical runs of pixels.

The small array pieces that OCR (`ocr.py`) and the finding of printed lines (`ruling.py`)
both stand on. It knows nothing about digits, lines of writing or models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

INK = 0.3                # ink above this is part of a stroke
EIGHT = np.ones((3, 3), bool)  # 8-connectivity


@dataclass
class Comp:
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


def components(mask: np.ndarray) -> list[Comp]:
    labels, n = ndimage.label(mask, structure=EIGHT)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is not None:
            out.append(Comp(sl[0].start, sl[1].start, labels[sl] == i))
    return out


def run_ids(mask: np.ndarray):
    """Each pixel's horizontal run: (run id, 0 off the mask; each run's length, by id)."""
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    ids = np.cumsum(starts.ravel()).reshape(mask.shape) * mask
    length = np.bincount(ids.ravel())
    length[0] = 0
    return ids, length


def horizontal_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """The pixels of horizontal runs at least `length` long (a 1×length opening, in O(pixels))."""
    ids, lengths = run_ids(mask)
    return lengths[ids] >= length


def leading(flags: np.ndarray) -> int:
    """How many of `flags` are true before the first false one."""
    return len(flags) if flags.all() else int(flags.argmin())


def vertical_runs(mask: np.ndarray, length: int):
    """Every vertical run of at least `length` pixels: lists (x, top, bottom), bottom exclusive."""
    m = np.zeros((mask.shape[0] + 2, mask.shape[1]), np.int8)
    m[1:-1] = mask
    d = np.diff(m, axis=0).T  # per column, +1 where a run starts, -1 past its end
    xs, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # the same order: column by column, top to bottom
    keep = ends - starts >= length
    return xs[keep].tolist(), starts[keep].tolist(), ends[keep].tolist()
