"""MNIST on disk: the IDX format, the published checksums, finding and fetching the files.

This module turns the four canonical MNIST files into uint8 arrays, verified
byte for byte against the published SHA-256 sums. It knows nothing about
tensors, splits or training (see `datasets.py`).

Where the files are looked for, in order:
1. an explicit directory (`--data-dir`);
2. the environment variable `DIGITREC_DATA`;
   (either may also be a parent folder holding `mnist/`, as `../shared/datasets` does)
3. `../shared/datasets/mnist` beside the project (a development checkout);
4. the user cache directory, where missing files are downloaded from public
   mirrors, verified, and written atomically.
Each file may be stored plain or gzipped (`NAME` or `NAME.gz`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np

from .errors import DataError

# SHA-256 of each *decompressed* file, as published (../shared/datasets/mnist/SHA256SUMS).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Public mirrors of the canonical gzipped files, tried in turn.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

_IDX_DTYPES = {0x08: np.uint8}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an IDX file (magic, dims, payload), checking magic, dims and length."""
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    zero1, zero2, dtype_code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or dtype_code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise DataError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()} "
            "(expected 0x0000080N: unsigned bytes, N dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{name}: IDX length mismatch: header declares dims {dims} "
            f"({expected} bytes) but the file has {len(data)} bytes"
            + (" (truncated)" if len(data) < expected else " (trailing data)")
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_file(path: Path) -> bytes:
    """Read a file, gunzipping it when its name ends in .gz."""
    try:
        raw = Path(path).read_bytes()
        return gzip.decompress(raw) if str(path).endswith(".gz") else raw
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        hint = ("; the .gz file is cut short or damaged (its SHA-256 sum is of the unpacked data, which cannot "
                "be read to check it): delete it, and it is downloaded again" if str(path).endswith(".gz") else "")
        raise DataError(f"{path}: cannot read ({e}){hint}") from e


def verify(name: str, data: bytes, where: Path | str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != SHA256[name]:
        raise DataError(
            f"{where}: checksum mismatch for {name}\n"
            f"  expected sha256 {SHA256[name]}\n"
            f"  actual   sha256 {actual}\n"
            "The file is corrupt, truncated or not the canonical MNIST file; "
            "delete it to have it downloaded again."
        )


def _present(d: Path, name: str) -> Path | None:
    for candidate in (d / name, d / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched, in order (see the module docstring)."""
    def given(d):  # a folder given by the user may also be a parent holding mnist/ (as ../shared/datasets)
        return d / "mnist" if (d / "mnist").is_dir() else d

    if data_dir is not None:
        return [given(Path(data_dir))]
    dirs = []
    if os.environ.get("DIGITREC_DATA"):
        dirs.append(given(Path(os.environ["DIGITREC_DATA"])))
    repo_root = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), repo_root):
        shared = base.parent / "shared" / "datasets" / "mnist"
        if shared.is_dir() and shared.resolve() not in [d.resolve() for d in dirs]:
            dirs.append(shared)
    dirs.append(cache_dir())
    return dirs


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("digitrec")) / "mnist"


def download(name: str, dest: Path, mirrors: list[str] | None = None) -> Path:
    """Fetch NAME.gz from the mirrors in turn; verify; write atomically into DEST."""
    errors = []
    for base in mirrors or MIRRORS:
        url = f"{base}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                raw = r.read()
            verify(name, gzip.decompress(raw), url)
        except Exception as e:  # network error, bad gzip, bad checksum: try the next mirror
            errors.append(f"{url}: {e}")
            continue
        dest.mkdir(parents=True, exist_ok=True)  # only now: a mistyped folder is not left behind
        target, tmp = dest / f"{name}.gz", dest / f".{name}.{os.getpid()}.part"
        tmp.write_bytes(raw)
        os.replace(tmp, target)
        return target
    raise DataError(
        f"Could not download {name} from any mirror:\n  " + "\n  ".join(errors)
    )


def locate(data_dir=None, download_missing: bool = True, mirrors=None) -> dict[str, Path]:
    """Find all four files (downloading into the cache dir if allowed)."""
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        found = {n: _present(d, n) for n in SHA256}
        if all(found.values()):
            return found
    target = dirs[-1]
    if download_missing:
        try:
            return {n: _present(target, n) or download(n, target, mirrors) for n in SHA256}
        except DataError as e:
            reason = str(e)
    else:
        reason = "downloading is disabled"
    raise DataError(
        "MNIST was not found. Looked in: "
        + ", ".join(str(d) for d in dirs)
        + f". Downloading into {target} failed ({'; '.join(line.strip() for line in reason.splitlines())}). "
        "To supply the files yourself, put train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (plain or .gz) in a folder and pass "
        "--data-dir FOLDER or set DIGITREC_DATA=FOLDER; they are checked against the published "
        "SHA-256 sums."
    )


def load(data_dir=None, download_missing: bool = True, mirrors=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (images N×28×28 uint8, labels N uint8), 'test': (...)}, verified."""
    paths = locate(data_dir, download_missing, mirrors)
    out = {}
    for split, (img_name, lbl_name) in SPLITS.items():
        arrays = []
        for name in (img_name, lbl_name):
            data = read_file(paths[name])
            verify(name, data, paths[name])
            arrays.append(parse_idx(data, str(paths[name])))
        images, labels = arrays
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"MNIST {split}: images {images.shape} do not match labels {labels.shape}")
        out[split] = (images, labels)
    return out
