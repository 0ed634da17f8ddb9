"""MNIST-style preprocessing: any image of one digit -> the 28×28 input the network was trained on.

The steps, each a function of its own:
  load_image      decode a path, bytes, file object, PIL image or array; refuse hostile files
  to_ink          a 2-D ink map (float32 in [0, 1], ink high): alpha, polarity, uneven
                  lighting and specks handled
  normalize_digit MNIST's normalization (LeCun et al.): crop to the ink, scale the longer
                  side to 20 px keeping the aspect ratio (anti-aliased), paste into 28×28
                  so that the centre of mass falls on pixel (14, 14)
  preprocess      the three in a row

This module is numpy, Pillow and scipy.ndimage only (no torch); it knows nothing about models.
It is THE one MNIST normalization: predict, the server, OCR crops and the dataset
loaders all call `normalize_digit`.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .errors import EmptyImageError, ImageError, ImageTooLargeError

MAX_PIXELS = 40_000_000      # refuse images declaring more pixels than this (decompression bombs)
MAX_FILE_BYTES = 64 << 20    # refuse files larger than this before decoding
WORK_SIDE = 160              # to_ink works at most this many pixels on the longer side
BOX = 20                     # MNIST: the digit's longer side, in pixels
SIZE = 28                    # MNIST: the field
CENTRE = 14.0                # MNIST: where the centre of mass lands (measured on MNIST train: 14.00 ± 0.29)
SMALL_DIGIT = 32             # a digit spanning fewer working pixels than this is re-cut at full size
MIN_CONTRAST = 0.12          # below this ink contrast (0-1 scale) the image is blank
STRONG = 0.35                # ink above this (0-1, after the contrast stretch) is surely a stroke
FADED = 0.15                 # fainter ink above this stays when it joins a stroke (a stroke fading)
NOISE = 5.0                  # ... and when it stands this many noise σ above the paper
EDGE = 0.12                  # a border this thin (share of the smaller side) may be a frame, not the paper
PURE = 0.8                   # ... when a ring of pixels inside it is this much the image's background


def _describe(source) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"


def _white(top: float) -> float:
    """The value of white for an image whose largest value is `top`: 1 (floats in [0, 1]), 255
    (8-bit levels), else the image's own maximum (16-bit scans, 12 bits stored in 16, ...)."""
    return 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else top


def _from_array(a: np.ndarray) -> Image.Image:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise ImageError(f"an image array must be H×W, H×W×3 or H×W×4, not {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind not in "uif":
        raise ImageError(f"an image array must hold numbers, not {a.dtype} values")
    elif a.dtype != np.uint8:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError("the image array holds NaN or infinite values")
        a = np.clip(np.rint(a * (255.0 / _white(float(a.max())))), 0, 255).astype(np.uint8)
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ImageError(f"image too large: {a.shape[1]}×{a.shape[0]} pixels (limit {MAX_PIXELS:,})")
    return Image.fromarray(np.ascontiguousarray(a))


def load_image(source, *, max_pixels: int = MAX_PIXELS, draft_side: int | None = None) -> Image.Image:
    """Decode `source` (path, bytes, binary file object, PIL image or numpy array) to a loaded PIL image.

    The first frame of an animation or multi-page file is used; EXIF orientation is applied.
    Raises ImageError, with a message for a person, for a missing, zero-byte, truncated,
    corrupt or non-image file and for one declaring more than `max_pixels` pixels (a
    decompression bomb: refused from its header, before any pixel is decoded).
    `draft_side` lets a large JPEG be decoded at a reduced scale (at least that many
    pixels on each side), which is much faster when only a small image is needed.
    """
    if isinstance(source, Image.Image):
        if source.width * source.height > max_pixels:
            raise ImageTooLargeError(f"image too large: {source.width}×{source.height} pixels (limit {max_pixels:,})")
        if source.width == 0 or source.height == 0:
            raise EmptyImageError(f"<PIL image>: the image has no pixels ({source.width}×{source.height})")
        im = source
        try:
            im.load()  # an Image.open()ed file is decoded here: its errors are the file's
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
            raise ImageError(f"<PIL image>: cannot decode ({str(e) or type(e).__name__})") from e
        return _upright(im)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if not path.exists():
                raise ImageError(f"{name}: no such file")
            if not path.is_file():
                raise ImageError(f"{name}: not a file")
            size = path.stat().st_size
        except OSError as e:  # a name the system refuses (too long, ...)
            raise ImageError(f"{name[:80]}: cannot open ({e.strerror or e})") from e
        if size > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"{name}: file too large ({size:,} bytes; limit {MAX_FILE_BYTES:,})")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"{name}: cannot read ({e.strerror or e})") from e
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"{name}: file too large ({len(data):,} bytes; limit {MAX_FILE_BYTES:,})")
    elif hasattr(source, "read"):
        data = _read_file_object(source, name)
        if len(data) > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"{name}: file too large (limit {MAX_FILE_BYTES:,} bytes)")
    else:
        raise ImageError(f"cannot read an image from a {type(source).__name__}; "
                         "give a path, bytes, a file object, a PIL image or a numpy array")
    im = open_image(data, name, max_pixels)
    try:
        if draft_side and im.format == "JPEG":
            im.draft(None, (draft_side, draft_side))
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as e:
        msg = str(e) or type(e).__name__
        hint = "truncated" if "truncat" in msg.lower() or isinstance(e, EOFError) else "corrupt"
        raise ImageError(f"{name}: cannot decode: the image file is {hint} ({msg})") from e
    return _upright(im)


def _read_file_object(f, name: str) -> bytes:
    """Up to MAX_FILE_BYTES + 1 bytes of a binary file object."""
    try:
        data = f.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as e:  # closed, not readable
        raise ImageError(f"{name}: cannot read the file object ({e})") from e
    if not isinstance(data, bytes):
        raise ImageError(f"{name}: the file object must be opened in binary mode")
    return data


def _upright(im: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (phones store photos rotated)."""
    try:
        if im.getexif().get(0x0112, 1) != 1:
            return ImageOps.exif_transpose(im) or im
    except Exception:  # a broken EXIF block must not lose an otherwise good image
        pass
    return im


def open_image(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open image bytes from their header alone, decoding no pixel (PIL's lazy `Image.open`).

    Raises EmptyImageError (zero bytes or pixels), ImageTooLargeError (more than
    `max_pixels` declared: a possible decompression bomb) or ImageError (not an image in
    a known format, or a corrupt header), each with a message for a person.
    """
    if not data:
        raise EmptyImageError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # PIL's own, larger limit
        found = re.search(r"\((\d+) pixels\)", str(e))
        declared = f"{int(found.group(1)):,} pixels" if found else "more pixels than PIL allows"
        raise ImageTooLargeError(f"{name}: image too large: {declared} declared (limit {max_pixels:,}); "
                                 "refused as a possible decompression bomb") from e
    except UnidentifiedImageError as e:
        kind = "text, not an image" if _looks_like_text(data) else "not a recognized image format"
        raise ImageError(f"{name}: cannot decode: {kind} "
                         "(PNG, JPEG, BMP, GIF, TIFF and WebP are supported)") from e
    except Exception as e:  # PIL raises many types on hostile headers; all mean "not an image"
        raise ImageError(f"{name}: cannot decode: the image header is corrupt ({type(e).__name__}: {e})") from e
    if im.width * im.height > max_pixels:
        raise ImageTooLargeError(f"{name}: image too large: {im.width}×{im.height} pixels declared "
                                 f"(limit {max_pixels:,}); refused as a possible decompression bomb")
    if im.width == 0 or im.height == 0:
        raise EmptyImageError(f"{name}: the image has no pixels ({im.width}×{im.height})")
    return im


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= 32 or c in b"\t\r\n" for c in head)


def _planes(image: Image.Image, side: int, fast: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance in [0, 1] (float32) and alpha in [0, 1] (None when fully opaque), each
    reduced to at most `side` pixels on the longer side. Both planes are single-channel
    before they are shrunk, which is much cheaper than shrinking RGBA."""
    im = image
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "L")
    elif im.mode.startswith("I;16") or im.mode in ("I", "F"):  # as arrays are: see _white
        a = np.nan_to_num(np.asarray(im).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        im = Image.fromarray(np.clip(a / _white(float(a.max())), 0, 1) * 255.0, "F")
    elif im.mode == "La":  # premultiplied alpha: PIL converts it to LA only
        im = im.convert("LA")
    elif im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "L")
    alpha = None
    if im.mode in ("LA", "RGBA"):
        a = im.getchannel("A")
        alpha = a if a.getextrema()[0] < 255 else None
        im = im.convert("L") if im.mode == "RGBA" else im.getchannel("L")
    im = _shrink(im, side, fast)
    if im.mode == "RGB":
        im = im.convert("L")
    gray = np.asarray(im, dtype=np.float32) * (1.0 / 255.0)
    if alpha is not None:
        alpha = np.asarray(_shrink(alpha, side, fast), dtype=np.float32) * (1.0 / 255.0)
    return gray, alpha


def _shrink(image: Image.Image, side: int, fast: bool = False) -> Image.Image:  # L, RGB, F
    """At most `side` pixels on the longer side, by box filtering (anti-aliased).

    An integer reduction first (cheap); then, unless `fast`, a resize to exactly `side`.
    With `fast`, the integer factor is rounded up instead: between side/2 and side pixels."""
    longer = max(image.size)
    if longer <= side:
        return image
    factor = -(-longer // side) if fast else longer // side
    if factor >= 2:
        image = image.reduce(factor)
    if max(image.size) > side:
        scale = side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BOX)
    return image


def _block_min_background(ink: np.ndarray, step: int = 1, grid: int = 8) -> np.ndarray:
    """A smooth background estimate of an ink map: a low percentile per block (grid×grid
    blocks), then the minimum over each 3×3 neighbourhood of blocks (so no block inside a
    thick stroke counts as background), then bilinear interpolation back to full size."""
    h, w = ink.shape
    sub = ink[::step, ::step]
    gy, gx = min(grid, sub.shape[0]), min(grid, sub.shape[1])
    bh, bw = sub.shape[0] // gy, sub.shape[1] // gx
    blocks = sub[: gy * bh, : gx * bw].reshape(gy, bh, gx, bw).transpose(0, 2, 1, 3).reshape(gy, gx, -1)
    k = blocks.shape[2] // 5
    est = np.partition(blocks, k, axis=2)[:, :, k]
    est = ndimage.minimum_filter(est, size=3, mode="nearest")
    return np.asarray(Image.fromarray(np.ascontiguousarray(est, np.float32), "F").resize((w, h), Image.Resampling.BILINEAR))


def to_ink(image: Image.Image, *, max_side: int = WORK_SIDE, speck_fraction: float = 0.08,
           fast: bool = False) -> np.ndarray:
    """The image's ink map: 2-D float32 in [0, 1], ink high, background 0.

    - transparency: composited over a background that contrasts with the strokes
      (a canvas export of black strokes on transparent pixels works);
    - polarity: the background is what the image's border mostly shows; dark-on-light is inverted;
    - uneven lighting: a smooth background estimate is subtracted, then contrast stretched;
    - specks: connected blobs much smaller than the largest one are erased (a blob: its strong
      pixels and the fainter ink joined to them, so a thin stroke that fades in places stays whole;
      fainter ink counts only where it stands clear of the image's noise, so grain stays paper).
    Large images are first reduced to at most `max_side` pixels on the longer side (with
    `fast`, by an integer factor only: between max_side/2 and max_side, quicker).
    Blobs smaller than `speck_fraction` of the largest are specks (OCR passes its own values).
    A blank image (contrast below MIN_CONTRAST) gives all zeros.
    """
    gray, alpha = _planes(image, max_side, fast)
    if alpha is not None:
        opaque = alpha > 0.5
        stroke_light = float(gray[opaque].mean()) > 0.5 if opaque.any() else False
        gray = gray * alpha + (0.0 if stroke_light else 1.0) * (1.0 - alpha)
    step = max(1, min(gray.shape) // 64)  # statistics on a subsample: fast and as good
    ink = (1.0 - gray) if _light_background(gray) else gray.copy()
    if min(ink.shape) >= 16:
        ink -= _block_min_background(ink, step)
    else:
        ink -= float(np.median(ink))
    np.clip(ink, 0.0, None, out=ink)
    # contrast: the brightest ink after a 3×3 box blur, so lone noisy pixels do not count
    peak = float(_box3(ink).max())
    if peak < MIN_CONTRAST:
        return np.zeros(ink.shape, np.float32)
    ink = np.clip(ink * (1.0 / peak), 0.0, 1.0).astype(np.float32, copy=False)
    strong = ink > STRONG
    # fainter ink joins a stroke where its 3×3 mean passes FADED and stands clear of the image's
    # own noise (NOISE σ of it, the σ from the median absolute deviation of the fine detail)
    smooth = _box3(ink)
    detail = ink - smooth
    mad = float(np.median(np.abs(detail - np.median(detail))))
    sigma = 1.4826 * mad / 0.943 / 3  # of white noise, after the 3×3 mean (the detail keeps 0.943 of it)
    labels, n = ndimage.label(strong | (smooth > max(FADED, NOISE * sigma)), structure=np.ones((3, 3), bool))
    if n == 0 or not strong.any():
        return np.zeros(ink.shape, np.float32)
    # a blob's size is its strong pixels
    sizes = np.bincount(labels[strong], minlength=n + 1)
    sizes[0] = 0
    keep = sizes >= max(4, speck_fraction * sizes.max())
    keep[0] = False
    # erase everything but the kept strokes and their anti-aliased rim (one pixel around them)
    ink[~_dilate3(keep[labels])] = 0.0
    ink[ink < 0.1] = 0.0
    return ink


def _light_background(gray: np.ndarray) -> bool:
    """Whether the paper is light (dark ink on it). The background is what the border mostly shows,
    which holds even when a fat digit fills most of the frame; but a thin edge (the printed frame
    of a form field cropped at its box, a grid line of squared paper, a strip of desk around a
    photographed sheet) can hide the paper there. So when the border disagrees with most of the
    image and each of its four sides is one even tone (PURE of it on one side: a frame, a strip, paper,
    not a digit cropped close, whose strokes cross it), the paper is the image's tone if some side
    shows it (a desk along the other sides, however wide), or if a ring of pixels just inside the
    border (within EDGE of the smaller side) is almost all (PURE) of it; a fat digit's strokes
    never fill one."""
    light = gray > (float(gray.min()) + float(gray.max())) / 2

    def ring(d: int) -> list:  # the four sides of the ring of pixels d inside the border
        g = light[d:light.shape[0] - d, d:light.shape[1] - d]
        return [g[0], g[-1], g[:, 0], g[:, -1]]

    border, image = float(np.mean(np.concatenate(ring(0)))) > 0.5, float(np.median(light[::2, ::2])) > 0.5
    sides = [float(np.mean(side)) for side in ring(0)]
    if border == image or not all(abs(s - 0.5) >= PURE - 0.5 for s in sides):
        return border
    on_image = (lambda s: s >= PURE) if image else (lambda s: s <= 1 - PURE)  # a light share that is paper
    if any(on_image(s) for s in sides):  # some sides are the paper: the others, a desk or frame
        return image
    depth = min(max(1, round(EDGE * min(gray.shape))), (min(gray.shape) - 1) // 2)
    return image if any(on_image(float(np.mean(np.concatenate(ring(d))))) for d in range(1, depth + 1)) else border


def _box3(a: np.ndarray) -> np.ndarray:
    """3×3 box mean (edges replicated)."""
    return ndimage.uniform_filter(a, size=3, mode="nearest")


def _dilate3(m: np.ndarray) -> np.ndarray:
    """Binary dilation by a 3×3 square."""
    return ndimage.maximum_filter(m.view(np.uint8), size=3, mode="constant").view(bool)


def normalize_digit(ink: np.ndarray) -> np.ndarray | None:
    """MNIST form of an ink map (2-D, floats in [0, 1], ink high, any size), or None if it has no ink.

    Crop to the bounding box of the ink (pixels above 10% of the peak), scale so the longer
    side is 20 px keeping the aspect ratio (anti-aliased resampling), and paste into a
    28×28 field so that the centre of mass lands on pixel (14, 14), as LeCun et al. did
    for MNIST (integer shift). Returns float32 28×28 in [0, 1].
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"normalize_digit needs a 2-D ink map, got shape {ink.shape}")
    peak = float(ink.max()) if ink.size else 0.0
    if not np.isfinite(peak) or peak <= 0.05:
        return None
    rows = np.flatnonzero((ink > 0.1 * peak).any(1))
    cols = np.flatnonzero((ink > 0.1 * peak).any(0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] / peak
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, min(BOX, round(h * scale))), max(1, min(BOX, round(w * scale)))
    patch = np.asarray(Image.fromarray(crop, "F").resize((nw, nh), Image.Resampling.LANCZOS))
    patch = np.clip(patch, 0.0, 1.0)
    mass = float(patch.sum())
    if mass <= 0:
        return None
    cy = float((patch.sum(1) * np.arange(nh)).sum()) / mass
    cx = float((patch.sum(0) * np.arange(nw)).sum()) / mass
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - nh))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + nh, left:left + nw] = patch
    return out


def preprocess(source) -> np.ndarray | None:
    """normalize_digit(to_ink(load_image(source))): any image -> 28×28 float32 in [0, 1], or None if blank.

    When the digit is small in a large image (under SMALL_DIGIT pixels at the working
    resolution, or not found at all there), its neighbourhood is cut from the full image and
    processed again, so the digit is not normalized from a handful of pixels.
    """
    if hasattr(source, "read") and not isinstance(source, Image.Image):
        source = _read_file_object(source, _describe(source))  # bytes, so a small digit can be decoded again
    reloadable = isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike))
    image = load_image(source, draft_side=WORK_SIDE)
    ink = to_ink(image, fast=True)
    full = None
    if not ink.any() and (reloadable or max(image.size) > 1.5 * max(ink.shape)):
        # nothing at this scale: a small digit on a large page may have vanished; look closer
        full = load_image(source) if reloadable else image
        if max(full.size) >= 3 * max(ink.shape):
            ink = to_ink(full, max_side=4 * WORK_SIDE, fast=True)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if not len(rows):
        return None
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    if extent < SMALL_DIGIT and max(image.size) > 1.5 * max(ink.shape) or full is not None:
        image = full or (load_image(source) if reloadable else image)  # full resolution, not the JPEG draft
        if max(image.size) <= 1.5 * max(ink.shape):
            return normalize_digit(ink)
        scale = max(image.size) / max(ink.shape)
        margin = extent  # the digit's own size on every side: enough paper for the statistics
        box = [int(max(0, (cols[0] - margin) * scale)), int(max(0, (rows[0] - margin) * scale)),
               int(min(image.width, (cols[-1] + 1 + margin) * scale)),
               int(min(image.height, (rows[-1] + 1 + margin) * scale))]
        refined = to_ink(image.crop(box), fast=True)
        if refined.any():
            ink = refined
    return normalize_digit(ink)
