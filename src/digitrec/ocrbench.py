"""The OCR benchmark: synthetic images of handwritten numbers with known answers, and their scoring.

Numbers are composed from MNIST **test** digits (which no model trains on): each
digit is rescaled (±20% around an image-wide size), rotated a little, its strokes
thickened or thinned (grey dilation/erosion), jittered vertically and placed
after the previous one with a random gap, or pushed into it until the inks touch
or overlap (a configurable share of images has at least one such pair). The ink
is printed on a paper-like background (tint, uneven lighting, texture), with
noise and JPEG artifacts. Sample `i` of seed `s` is the same whatever `n` is, so a
range of seeds (`digitrec ocr-bench --seed 0-4`) is N numbers of each, scored together.

`score` reads every image with `digitrec.ocr.read` and reports sequence accuracy,
digit accuracy and character error rate, split into separated and touching
samples; it also classifies each digit cut out with the generator's own masks
("perfect segmentation"), which shows how much of the error is the classifier's, and
each digit's source MNIST image ("original digits"), which shows how much of that the
rendering (scale, rotation, pen, paper, JPEG) adds: the last is the ceiling any cutting
and rendering-proof preprocessing could reach with this classifier.

`make_sample` also composes lines of *training* digits for `ocrdata.py` (`digitrec train
--ocr-lines`). This module is not the OCR itself (`ocr.py`) and trains nothing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

INK_THRESHOLD = 0.2  # a digit's own ink above this counts for its box and mask


@dataclass
class BenchConfig:
    n: int = 500                   # images
    length: tuple[int, int] = (5, 5)  # digits per number, inclusive range (issue: 3-10)
    touching_share: float = 0.5    # share of images with at least one touching/overlapping pair
    seed: int = 0
    size: tuple[float, float] = (1.2, 2.2)  # image-wide scale of the 28 px MNIST digit
    scale_jitter: float = 0.2      # per digit, ±
    rotation: float = 10.0         # degrees, ±
    vertical_jitter: float = 0.08  # of the digit height, ±
    gap: tuple[float, float] = (0.15, 0.6)  # separated neighbours: gap in digit heights
    jpeg_quality: tuple[int, int] = (35, 90)


@dataclass
class Sample:
    image: Image.Image             # RGB
    text: str                      # the digits, left to right
    boxes: list[list[int]]         # per digit [x0, y0, x1, y1], x1/y1 exclusive
    masks: list[np.ndarray] = field(repr=False)  # per digit: its own ink mask inside its box
    touching: bool                 # at least one pair of neighbours' inks touch
    originals: np.ndarray = field(repr=False)  # per digit: its source 28×28 (uint8), in order


def _digit_ink(img: np.ndarray, scale: float, angle: float, stroke: int, rng) -> np.ndarray:
    """One MNIST digit as float ink, rescaled, rotated, strokes changed, cropped to its ink."""
    ink = img.astype(np.float32) / 255.0
    ink = ndimage.zoom(ink, scale, order=1)
    ink = ndimage.rotate(ink, angle, reshape=True, order=1)
    if stroke > 0:
        ink = ndimage.grey_dilation(ink, size=(stroke + 1, stroke + 1))
    elif stroke < 0:
        eroded = ndimage.grey_erosion(ink, size=(2, 2))
        if (eroded > 0.5).sum() > 0.4 * (ink > 0.5).sum():  # never erase a thin digit
            ink = eroded
    ink = np.clip(ink, 0, 1)
    ys, xs = np.nonzero(ink > INK_THRESHOLD)
    return ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _touch_offset(canvas_mask: np.ndarray, mask: np.ndarray, y: int, x_start: int) -> int | None:
    """The largest x <= x_start where MASK placed at (y, x) touches CANVAS_MASK (8-connected)."""
    grown = ndimage.binary_dilation(canvas_mask, structure=np.ones((3, 3), bool))
    h, w = mask.shape
    for x in range(x_start, max(x_start - w, 0), -1):
        if (grown[y:y + h, x:x + w] & mask).any():
            return x
    return None


def make_sample(digits: np.ndarray, labels: np.ndarray, index: int, cfg: BenchConfig) -> Sample:
    """Sample INDEX of the benchmark (deterministic in cfg.seed and INDEX)."""
    rng = np.random.default_rng([cfg.seed, index])
    length = int(rng.integers(cfg.length[0], cfg.length[1] + 1))
    want_touch = rng.random() < cfg.touching_share
    touch_pairs = rng.random(length - 1) < 0.35 if want_touch else np.zeros(length - 1, bool)
    if want_touch and length > 1 and not touch_pairs.any():
        touch_pairs[rng.integers(length - 1)] = True
    size = rng.uniform(*cfg.size)
    height = 20 * size  # typical digit height in px
    picks = rng.integers(len(digits), size=length)
    inks = []
    for k in picks:
        scale = size * rng.uniform(1 - cfg.scale_jitter, 1 + cfg.scale_jitter)
        stroke = int(rng.choice([-1, 0, 0, 1, 2]))
        inks.append(_digit_ink(digits[k], scale, rng.uniform(-cfg.rotation, cfg.rotation), stroke, rng))

    margin = int(height * rng.uniform(0.4, 1.0)) + 2
    H = max(i.shape[0] for i in inks) + 2 * margin + int(2 * cfg.vertical_jitter * height) + 2
    W = sum(i.shape[1] for i in inks) + int(length * cfg.gap[1] * height) + 2 * margin + 2
    layers, boxes = [], []
    canvas_mask = np.zeros((H, W), bool)
    x = margin
    mid = H / 2
    for j, ink in enumerate(inks):
        h, w = ink.shape
        y = int(round(mid - h / 2 + rng.uniform(-1, 1) * cfg.vertical_jitter * height))
        y = min(max(y, 0), H - h)
        mask = ink > INK_THRESHOLD
        if j > 0:
            if touch_pairs[j - 1]:
                xt = _touch_offset(canvas_mask, mask, y, x)
                if xt is not None:  # push a little further in: touching or overlapping strokes
                    x = max(xt - int(rng.uniform(0, 0.1) * height), boxes[-1][0] + 1)
            else:
                x += max(2, int(rng.uniform(*cfg.gap) * height))
        layer = np.zeros((H, W), np.float32)
        layer[y:y + h, x:x + w] = ink
        layers.append(layer)
        canvas_mask[y:y + h, x:x + w] |= mask
        boxes.append([x, y, x + w, y + h])
        x += w
    # crop the canvas to the ink plus the margin
    x1 = max(b[2] for b in boxes) + margin
    layers = [l[:, :x1] for l in layers]
    ink = np.max(layers, axis=0)
    own = [l > INK_THRESHOLD for l in layers]
    grown = [ndimage.binary_dilation(m, structure=np.ones((3, 3), bool)) for m in own]
    touching = any((grown[j] & own[j + 1]).any() for j in range(length - 1))
    masks = [own[j][b[1]:b[3], b[0]:b[2]] for j, b in enumerate(boxes)]
    image = _render(ink, rng, cfg)
    return Sample(image, "".join(str(int(labels[k])) for k in picks), boxes, masks, touching, digits[picks])


def _render(ink: np.ndarray, rng, cfg: BenchConfig) -> Image.Image:
    """Ink on paper: tinted, unevenly lit, textured background; pen colour; noise; JPEG."""
    H, W = ink.shape
    paper = rng.uniform(0.78, 0.97)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xx / W + np.sin(angle) * yy / H)
    light = paper - rng.uniform(0, 0.15) * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (H, W)).astype(np.float32), 1.5)
    bg = light + 0.015 * texture / max(texture.std(), 1e-6)
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.88, 1.0)], np.float32)
    pen = rng.uniform(0.03, 0.35) * np.array([1.0, 1.0, rng.uniform(1.0, 2.2)], np.float32)
    alpha = (ink * rng.uniform(0.85, 1.0))[..., None]
    rgb = bg[..., None] * tint * (1 - alpha) + np.minimum(pen, 1) * alpha
    rgb += rng.normal(0, rng.uniform(0.0, 0.03), rgb.shape)
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def generate(cfg: BenchConfig, data_dir=None):
    """Yield cfg.n samples composed from MNIST test digits."""
    from . import mnist

    images, labels = mnist.load(data_dir)["test"]
    for i in range(cfg.n):
        yield make_sample(images, labels, i, cfg)


# ---------------------------------------------------------------- scoring

def edit_alignment(truth: str, pred: str) -> tuple[int, int]:
    """(Levenshtein distance, characters of TRUTH matched in an optimal alignment)."""
    n, m = len(truth), len(pred)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1,
                          d[i - 1, j - 1] + (truth[i - 1] != pred[j - 1]))
    i, j, matched = n, m, 0  # walk back, preferring diagonal steps
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (truth[i - 1] != pred[j - 1]):
            matched += truth[i - 1] == pred[j - 1]
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return int(d[n, m]), matched


def oracle_crops(sample: Sample, ink: np.ndarray) -> list[np.ndarray | None]:
    """Each digit normalized from the image's ink inside its own (slightly grown) mask."""
    from .preprocess import normalize_digit

    out = []
    for (x0, y0, x1, y1), mask in zip(sample.boxes, sample.masks):
        grown = ndimage.binary_dilation(mask, iterations=2)
        out.append(normalize_digit(ink[y0:y1, x0:x1] * grown))
    return out


def score(recognizer, samples, progress: bool = True, total: int | None = None, on_row=None) -> dict:
    """Read every sample (any iterable: they are made as they are read, never all held); the
    figures, overall and split into 'separated' and 'touching'. `on_row(k, sample, row)` sees each."""
    from tqdm import tqdm

    from .ocr import digit_char, ink_map, read

    min_conf = float(getattr(recognizer, "min_confidence", 0.6))

    def digits_of(normalized: np.ndarray) -> str:  # one digit per 28×28, '?' as the OCR does
        probs = recognizer.predict_normalized(normalized)
        return "".join(digit_char(p, min_conf) for p in probs)

    rows = []
    for k, s in enumerate(tqdm(samples, disable=not progress, desc="ocr-bench", unit="img", total=total)):
        pred = read(recognizer, s.image).text
        crops = oracle_crops(s, ink_map(s.image)[0])
        oracle = digits_of(np.stack([c if c is not None else np.zeros((28, 28), np.float32) for c in crops]))
        clean = digits_of(s.originals.astype(np.float32) / 255.0)
        dist, matched = edit_alignment(s.text, pred.replace("\n", ""))
        rows.append({"truth": s.text, "pred": pred, "touching": s.touching, "edits": dist,
                     "matched": matched, "oracle": oracle,
                     "oracle_matched": sum(a == b for a, b in zip(s.text, oracle)), "clean": clean})
        if on_row is not None:
            on_row(k, s, rows[-1])
    return {"groups": {name: _summary([r for r in rows if keep(r)])
                       for name, keep in (("all", lambda r: True),
                                          ("separated", lambda r: not r["touching"]),
                                          ("touching", lambda r: r["touching"]))},
            "samples": rows}


def _summary(rows: list[dict]) -> dict:
    n = len(rows)
    chars = sum(len(r["truth"]) for r in rows)
    if n == 0:
        return {"n": 0}
    return {
        "n": n,
        "sequence_accuracy": sum(r["pred"] == r["truth"] for r in rows) / n,
        "digit_accuracy": sum(r["matched"] for r in rows) / chars,
        "cer": sum(r["edits"] for r in rows) / chars,
        "oracle_sequence_accuracy": sum(r["oracle"] == r["truth"] for r in rows) / n,
        "oracle_digit_accuracy": sum(r["oracle_matched"] for r in rows) / chars,
        "clean_sequence_accuracy": sum(r["clean"] == r["truth"] for r in rows) / n,
    }


def format_table(groups: dict) -> str:
    lines = [f"{'':10} {'n':>5} {'sequence':>9} {'digit':>7} {'CER':>7} "
             f"{'| perfect-seg: sequence':>23} {'digit':>7} {'| original digits':>17}"]
    for name, g in groups.items():
        if not g.get("n"):
            lines.append(f"{name:10} {0:>5}")
            continue
        lines.append(f"{name:10} {g['n']:>5} {g['sequence_accuracy']:>9.2%} {g['digit_accuracy']:>7.2%} "
                     f"{g['cer']:>7.2%} {g['oracle_sequence_accuracy']:>23.2%} {g['oracle_digit_accuracy']:>7.2%}"
                     f" {g['clean_sequence_accuracy']:>17.2%}")
    return "\n".join(lines)


def parse_range(text: str, option: str, lo_bound: int, hi_bound: int) -> tuple[int, int]:
    """'5' -> (5, 5); '3-10' -> (3, 10); a DigitrecError naming OPTION outside [lo_bound, hi_bound]."""
    from .errors import DigitrecError

    try:
        lo, dash, hi = str(text).partition("-")
        lo, hi = int(lo), int(hi if dash else lo)  # '3-' is no range: int('') fails
    except ValueError:
        raise DigitrecError(f"{option} must be a number or a range like 3-10, not {text!r}") from None
    if not lo_bound <= lo <= hi <= hi_bound:
        raise DigitrecError(f"{option} must be a number or a rising range between {lo_bound} and "
                            f"{hi_bound:,} (got {text!r})")
    return lo, hi


def parse_length(text: str) -> tuple[int, int]:
    """Digits per number: '5' -> (5, 5); '3-10' -> (3, 10)."""
    return parse_range(text, "--length", 1, 30)


def run_cli(n: int, length: str, touching_share: float, seed="0", model=None, as_json: bool = False,
            save: str | None = None, data_dir=None, min_confidence: float = 0.6) -> int:
    """`digitrec ocr-bench`: generate, read, score, print (a table or JSON). `seed` may be a
    range ('0-4'): N numbers of each seed, scored together."""
    import json
    from pathlib import Path

    from .errors import DigitrecError
    from .recognizer import Recognizer

    if n < 1:
        raise DigitrecError("--n must be at least 1")
    if not 0.0 <= touching_share <= 1.0:
        raise DigitrecError(f"--touching-share must lie between 0 and 1 (got {touching_share})")
    first, last = parse_range(seed, "--seed", 0, 2**31 - 1)
    seeds = list(range(first, last + 1))
    cfgs = [BenchConfig(n=n, length=parse_length(length), touching_share=touching_share, seed=s) for s in seeds]
    recognizer = Recognizer.load(model, min_confidence=min_confidence, ocr=True)
    out = Path(save) if save else None
    if out is not None:  # before any work: a folder that cannot be made fails now, not after the run
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DigitrecError(f"--save-failures {out}: cannot create the folder ({e.strerror or e})") from e

    def save_failure(k: int, sample: Sample, row: dict) -> None:  # named by (seed,) index, truth and reading
        if row["pred"] != row["truth"]:
            s, i = seeds[k // n], k % n
            name = f"{i:04d}" if len(seeds) == 1 else f"s{s}_{i:04d}"
            target = out / f"{name}_{row['truth']}_{row['pred'].replace(chr(10), '-') or 'none'}.png"
            try:
                sample.image.save(target)
            except OSError as e:
                raise DigitrecError(f"--save-failures {target}: cannot write it ({e.strerror or e})") from e

    from . import mnist

    images, labels = mnist.load(data_dir)["test"]
    samples = (make_sample(images, labels, i, cfg) for cfg in cfgs for i in range(cfg.n))
    result = score(recognizer, samples, progress=not as_json, total=n * len(seeds),
                   on_row=save_failure if out is not None else None)
    seed_text = str(first) if first == last else f"{first}-{last}"
    if as_json:
        print(json.dumps({"config": {"n": n, "length": list(cfgs[0].length), "touching_share": touching_share,
                                     "seed": seed_text, "seeds": seeds, "min_confidence": min_confidence,
                                     "model": recognizer.name, "model_source": recognizer.source},
                          "groups": result["groups"]}, indent=2))
    else:
        what = f"seed {seed_text}" if len(seeds) == 1 else f"seeds {seed_text} ({n} numbers each)"
        print(f"ocr-bench: {n * len(seeds)} numbers of {length} digits, touching share {touching_share}, {what}, "
              f"min confidence {min_confidence}, model {recognizer.name} ({recognizer.source})")
        print(format_table(result["groups"]))
        print("perfect-seg: the same model on each digit cut out with the generator's own masks")
        print("original digits: the same model on each digit's source MNIST image (no rendering, no cutting)")
    return 0
