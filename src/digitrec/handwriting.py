"""Handwriting datasets beyond MNIST, read in their publishers' formats: USPS, Semeion, optdigits,
a folder of images (`root/<digit>/*.png`) and a CSV of label plus pixels (Kaggle's layout).

Each reader parses its format into ink arrays (float in [0, 1], ink high, the
publisher's frame size) with labels; corrupt lines raise `DataError` naming the
file and line. The named datasets are verified against their published SHA-256
sums and class counts. Every digit then reaches the model in MNIST form through
the one MNIST normalization, `preprocess.normalize_digit` (ink cropped, longer
side scaled to 20 px, centred by mass in 28×28), the same step `predict` uses;
`normalization="resize28"` / `"pad20"` are the alternatives measured in
docs/datasets.md. Loaders return {'train': (uint8 N×28×28, labels), 'test': ...}
like `mnist.load`; tensors and splits for training are `datasets.py`'s job.

Where the files are looked for: an explicit folder (`--data-dir`, either the
dataset's own folder or a parent holding `<name>/`), else `DIGITREC_DATA` (the
same two ways, or its sibling `<name>/`), else `../shared/datasets/<name>`
beside the project. These datasets are never downloaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError, DigitrecError
from .mnist import read_file

# SHA-256 of each file as distributed (../shared/datasets/<name>/SHA256SUMS).
SHA256 = {
    "usps": {
        "zip.train.gz": "66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16",
        "zip.test.gz": "8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f",
    },
    "semeion": {
        "semeion.data": "f43228ae3da5ea6a3c95069d53450b86166770e3b719dcc333182128fe08d4b1",
    },
    "optdigits": {
        "optdigits-orig.tra": "a4eff709680076cae40420343de292b5960fc2b0da439b8a57c3d14124113bda",
        "optdigits-orig.windep": "c09ab8735d588fdf980724f10a5072c0b757037dc80b448b2f6a10392751c9d6",
    },
}

# Class counts 0..9 per file. USPS: zip.info.txt. Semeion: the UCI page. optdigits windep:
# UCI's optdigits.tes (1,797 digits derived from these bitmaps, scikit-learn's load_digits).
# optdigits-orig.tra: the header declares ntot = 1934 but no per-class counts are published;
# these are counted from the checksum-verified file and guard the parser only.
CLASS_COUNTS = {
    "zip.train.gz": [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644],
    "zip.test.gz": [359, 264, 198, 166, 200, 160, 170, 147, 166, 177],
    "semeion.data": [161, 162, 159, 159, 161, 159, 161, 158, 155, 158],
    "optdigits-orig.tra": [189, 198, 195, 199, 186, 187, 195, 201, 180, 204],
    "optdigits-orig.windep": [178, 182, 177, 183, 181, 182, 181, 179, 174, 180],
}

SEMEION_SEED = 20081111     # Semeion has no official split: a fixed, seeded, stratified one
SEMEION_TEST_FRACTION = 0.5  # half each, as semeion.names recommends (50% tune, 50% blind)

NORMALIZATIONS = ("mnist", "resize28", "pad20")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


# ---------------------------------------------------------------- finding and verifying files

def locate(name: str, files, data_dir=None) -> Path:
    """The first candidate folder holding all `files` of dataset `name` (see the module docstring)."""
    candidates: list[Path] = []
    if data_dir is not None:
        candidates += [Path(data_dir), Path(data_dir) / name]
    else:
        env = os.environ.get("DIGITREC_DATA")
        if env:
            candidates += [Path(env), Path(env) / name, Path(env).parent / name]
        repo_root = Path(__file__).resolve().parents[2]
        for base in (Path.cwd(), repo_root):
            candidates.append(base.parent / "shared" / "datasets" / name)
    for d in candidates:
        if all((d / f).is_file() for f in files):
            return d
    raise DataError(
        f"{name} was not found: looked for {', '.join(files)} in "
        + ", ".join(str(d) for d in dict.fromkeys(candidates))
        + ". Put the publisher's files in a folder and pass --data-dir FOLDER (or set DIGITREC_DATA); "
        "this dataset is not downloaded automatically."
    )


def verify(dataset: str, path: Path, data: bytes) -> None:
    expected = SHA256[dataset][path.name]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch\n  expected sha256 {expected}\n  actual   sha256 {actual}\n"
            f"The file is corrupt, truncated or not the published {dataset} file."
        )


def check_counts(path: Path, labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=10).tolist()
    expected = CLASS_COUNTS[Path(path).name]
    if counts != expected:
        raise DataError(f"{path}: class counts {counts} differ from the published {expected}")


def _text_lines(path: Path) -> list[str]:
    data = read_file(path)
    try:
        return data.decode("ascii").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text file ({e})") from e


# ---------------------------------------------------------------- format parsers

def _floats(line: str, path, lineno: int, n: int) -> np.ndarray:
    parts = line.split()
    if len(parts) != n:
        raise DataError(f"{path}, line {lineno}: expected {n} numbers, found {len(parts)}")
    try:
        return np.array(parts, dtype=np.float64)
    except ValueError as e:
        raise DataError(f"{path}, line {lineno}: not a number ({e})") from None


def parse_usps(path) -> tuple[np.ndarray, np.ndarray]:
    """zip.train(.gz)/zip.test(.gz): a line per digit, the label then 256 values in [-1, 1] (-1 = background).

    Returns ink N×16×16 float32 in [0, 1] and labels N uint8.
    """
    inks, labels = [], []
    for lineno, line in enumerate(_text_lines(path), 1):
        if not line.strip():
            continue
        v = _floats(line, path, lineno, 257)
        if v[0] != int(v[0]) or not 0 <= v[0] <= 9:
            raise DataError(f"{path}, line {lineno}: label {line.split()[0]!r} is not a digit 0-9")
        if np.abs(v[1:]).max() > 1.0 + 1e-6:
            raise DataError(f"{path}, line {lineno}: pixel values must lie in [-1, 1]")
        labels.append(int(v[0]))
        inks.append((v[1:].reshape(16, 16) + 1.0) / 2.0)
    if not labels:
        raise DataError(f"{path}: no digits found")
    return np.clip(np.array(inks, dtype=np.float32), 0, 1), np.array(labels, dtype=np.uint8)


def parse_semeion(path) -> tuple[np.ndarray, np.ndarray]:
    """semeion.data: a line per digit, 256 binary pixels (1 = ink) then a one-hot label in 10 columns."""
    inks, labels = [], []
    for lineno, line in enumerate(_text_lines(path), 1):
        if not line.strip():
            continue
        v = _floats(line, path, lineno, 266)
        pixels, onehot = v[:256], v[256:]
        if not np.isin(pixels, (0.0, 1.0)).all():
            raise DataError(f"{path}, line {lineno}: pixels must be 0 or 1")
        if not np.isin(onehot, (0.0, 1.0)).all() or onehot.sum() != 1:
            raise DataError(f"{path}, line {lineno}: the last 10 columns must be a one-hot label, "
                            f"got {' '.join(f'{x:g}' for x in onehot)}")
        labels.append(int(onehot.argmax()))
        inks.append(pixels.reshape(16, 16))
    if not labels:
        raise DataError(f"{path}: no digits found")
    return np.array(inks, dtype=np.float32), np.array(labels, dtype=np.uint8)


OPTDIGITS_HEADER_LINES = 21


def parse_optdigits(path) -> tuple[np.ndarray, np.ndarray]:
    """optdigits-orig.*: a 21-line header (with `ntot = N`), then per digit 32 lines of 32 '0'/'1'
    (1 = ink) and a line with the label; the file may end with a line `EOF`."""
    lines = _text_lines(path)
    header = lines[:OPTDIGITS_HEADER_LINES]
    fields = dict(h.split("=", 1) for h in header if "=" in h)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if fields.get("entwidth") != "32" or fields.get("entheight") != "32" or "ntot" not in fields:
        raise DataError(f"{path}: not an optdigits bitmap file (its {OPTDIGITS_HEADER_LINES}-line header "
                        "must declare entwidth = 32, entheight = 32 and ntot)")
    body = lines[OPTDIGITS_HEADER_LINES:]
    while body and body[-1].strip() in ("", "EOF"):
        body.pop()
    inks, labels = [], []
    for start in range(0, len(body), 33):
        block = body[start : start + 33]
        first = OPTDIGITS_HEADER_LINES + start + 1
        if len(block) < 33:
            raise DataError(f"{path}, line {first}: truncated digit ({len(block)} of 33 lines)")
        rows = block[:32]
        for i, row in enumerate(rows):
            if len(row) != 32 or set(row) - {"0", "1"}:
                raise DataError(f"{path}, line {first + i}: expected 32 characters '0'/'1', got {row[:40]!r}")
        label = block[32].strip()
        if len(label) != 1 or not label.isdigit():
            raise DataError(f"{path}, line {first + 32}: expected a digit label, got {block[32]!r}")
        inks.append(np.array([[c == "1" for c in row] for row in rows], dtype=np.float32))
        labels.append(int(label))
    if len(labels) != int(fields["ntot"]):
        raise DataError(f"{path}: the header declares ntot = {fields['ntot']} digits, the file holds {len(labels)}")
    return np.array(inks, dtype=np.float32).reshape(-1, 32, 32), np.array(labels, dtype=np.uint8)


def parse_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Kaggle's digit-recognizer layout: a header `label,pixel0,...,pixelK`, then a row per digit,
    the label and K+1 values 0-255 (ink high), row by row, K+1 a square (784 = 28×28), at least 8×8.
    The same rows without the header (the common "MNIST in CSV" files) are read too."""
    lines = _text_lines(path)
    if not lines:
        raise DataError(f"{path}: empty file")
    header = [h.strip().strip('"') for h in lines[0].split(",")]
    n = len(header) - 1
    side = int(round(n ** 0.5))
    no_header = all(h.replace(".", "", 1).isdigit() for h in header)  # the first line is a digit already
    if (header[0].lower() != "label" and not no_header) or side < 8 or side * side != n:
        raise DataError(f"{path}, line 1: expected a header 'label,pixel0,...,pixelN' (or a first row "
                        f"of digits) with a square number of pixels, 8×8 or more (784 for 28×28), "
                        f"got {lines[0][:60]!r}")
    rows = []
    for lineno, line in enumerate(lines[not no_header:], 1 + (not no_header)):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != n + 1:
            raise DataError(f"{path}, line {lineno}: expected {n + 1} values, found {len(parts)}")
        try:
            v = np.array(parts, dtype=np.float64)
        except ValueError as e:
            raise DataError(f"{path}, line {lineno}: not a number ({e})") from None
        if v[0] != int(v[0]) or not 0 <= v[0] <= 9:
            raise DataError(f"{path}, line {lineno}: label {parts[0]!r} is not a digit 0-9")
        if v[1:].min() < 0 or v[1:].max() > 255:
            raise DataError(f"{path}, line {lineno}: pixel values must lie in 0-255")
        rows.append(v)
    if not rows:
        raise DataError(f"{path}: no digits found")
    rows = np.array(rows)
    return (rows[:, 1:] / 255.0).reshape(-1, side, side).astype(np.float32), rows[:, 0].astype(np.uint8)


# ---------------------------------------------------------------- to MNIST form

def _resize(ink: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(ink.astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None), dtype=np.float32)


def to_mnist_form(inks, normalization: str = "mnist") -> np.ndarray:
    """Ink arrays (any size, [0, 1], ink high) -> uint8 N×28×28 for `datasets.Split`.

    mnist:    preprocess.normalize_digit, the MNIST normalization `predict` uses (the default);
    resize28: the whole frame resized to 28×28 (no margin);
    pad20:    the whole frame resized to 20×20 and padded by 4 px (a margin, no centring by mass).
    A digit with no ink stays blank.
    """
    if normalization not in NORMALIZATIONS:
        raise DigitrecError(f"unknown normalization {normalization!r}; known: {', '.join(NORMALIZATIONS)}")
    from .preprocess import normalize_digit

    out = np.zeros((len(inks), 28, 28), dtype=np.float32)
    for i, ink in enumerate(inks):
        if normalization == "mnist":
            d = normalize_digit(np.asarray(ink, dtype=np.float32))
            if d is not None:
                out[i] = d
        elif normalization == "resize28":
            out[i] = _resize(ink, 28)
        else:
            out[i, 4:24, 4:24] = _resize(ink, 20)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------- the named datasets

def _read_verified(name: str, fname: str, data_dir) -> Path:
    d = locate(name, list(SHA256[name]), data_dir)
    path = d / fname
    verify(name, path, path.read_bytes())
    return path


def _load_train_test(name: str, files: dict[str, str], parse, data_dir, normalization: str) -> dict:
    """{'train', 'test'} from one verified file each, parsed, class-counted and brought to MNIST form."""
    out = {}
    for split, fname in files.items():
        path = _read_verified(name, fname, data_dir)
        ink, labels = parse(path)
        check_counts(path, labels)
        out[split] = (to_mnist_form(ink, normalization), labels)
    return out


def load_usps(data_dir=None, normalization: str = "mnist") -> dict:
    """USPS: 7,291 train + 2,007 test, verified."""
    return _load_train_test("usps", {"train": "zip.train.gz", "test": "zip.test.gz"}, parse_usps,
                            data_dir, normalization)


def semeion_split(labels: np.ndarray, seed: int = SEMEION_SEED, test_fraction: float = SEMEION_TEST_FRACTION):
    """The fixed Semeion split: per class, a seeded permutation; the first round(n × fraction) are test."""
    rng = np.random.default_rng(seed)
    test = []
    for c in range(10):
        members = np.nonzero(labels == c)[0]
        test.append(rng.permutation(members)[: int(round(len(members) * test_fraction))])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def load_semeion(data_dir=None, normalization: str = "mnist") -> dict:
    """Semeion: 1,593 digits, verified, split per `semeion_split` (796 train, 797 test)."""
    path = _read_verified("semeion", "semeion.data", data_dir)
    ink, labels = parse_semeion(path)
    check_counts(path, labels)
    images = to_mnist_form(ink, normalization)
    tr, te = semeion_split(labels)
    return {"train": (images[tr], labels[tr]), "test": (images[te], labels[te])}


def load_optdigits(data_dir=None, normalization: str = "mnist") -> dict:
    """optdigits 32×32 bitmaps: 1,934 train (optdigits-orig.tra), 1,797 writer-independent test."""
    return _load_train_test("optdigits", {"train": "optdigits-orig.tra", "test": "optdigits-orig.windep"},
                            parse_optdigits, data_dir, normalization)


# ---------------------------------------------------------------- a user's own digits

def read_folder(root) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Every image under root/<digit>/, through `preprocess.preprocess` (MNIST form).

    Returns uint8 N×28×28, labels, and the files in the same order (sorted).
    An undecodable or blank image is an error naming the file.
    """
    from .preprocess import preprocess

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files, labels = [], []
    for digit in range(10):
        d = root / str(digit)
        if d.is_dir():
            found = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files += found
            labels += [digit] * len(found)
    if not files:
        raise DataError(f"{root}: no images found; expected root/<digit>/*.png|jpg, e.g. {root / '7' / 'a.png'}")
    images = np.zeros((len(files), 28, 28), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            d = preprocess(f)
        except DigitrecError as e:  # the image's own message names the file already
            raise DataError(str(e) if str(e).startswith(str(f)) else f"{f}: {e}") from e
        if d is None:
            raise DataError(f"{f}: no ink found (a blank image); remove it or replace it")
        images[i] = np.round(np.clip(d, 0, 1) * 255).astype(np.uint8)
    return images, np.array(labels, dtype=np.uint8), files


def load_folder(root, normalization: str = "mnist") -> dict:
    """root/train/<digit>/ and root/test/<digit>/ when both exist; otherwise root/<digit>/ is one pool,
    given as both 'train' and 'test' (`datasets.prepare` then holds out a seeded test part)."""
    root = Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        return {s: read_folder(root / s)[:2] for s in ("train", "test")}
    pool = read_folder(root)[:2]
    return {"train": pool, "test": pool}


def load_csv(path, normalization: str = "mnist") -> dict:
    """A CSV of label plus pixels, one pool (see `load_folder`). 28×28 rows are taken as already in
    MNIST form (Kaggle's digit-recognizer is MNIST); other square sizes go through the normalization."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    ink, labels = parse_csv(path)
    if ink.shape[1:] == (28, 28):
        images = np.round(ink * 255).astype(np.uint8)
    else:
        images = to_mnist_form(ink, normalization)
    pool = (images, labels)
    return {"train": pool, "test": pool}


LOADERS = {"usps": load_usps, "semeion": load_semeion, "optdigits": load_optdigits}
