"""The `digitrec predict` job: files, folders and globs in; one answer per image out (table or JSON).

Each input file is decoded and normalized on its own, so a bad file becomes an 'error'
row with its message while the others go on; the network sees them in batches. This
module imports no torch (unless the model is a .pt checkpoint); the recognizing itself
is `recognizer.Recognizer`'s.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import DigitrecError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
BATCH = 256
SEVERAL = 0.5  # a "not one digit" probability from which the table says so and points to `digitrec ocr`


def expand(inputs: list[str]) -> list[tuple[str, str | None]]:
    """(path, error) per file: folders give their image files (recursively, sorted), globs
    their matches; an input that matches nothing gives one entry with an error."""
    out: list[tuple[str, str | None]] = []
    for item in inputs:
        p = Path(item)
        if not item:  # Path('') is the current folder: an empty argument is a mistake, not '.'
            out.append((item, "empty path"))
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            out += [(str(f), None) for f in files] or [(item, "folder holds no image files "
                                                              f"({', '.join(sorted(IMAGE_SUFFIXES))})")]
        elif p.exists():
            out.append((item, None))
        elif glob.has_magic(item):
            files = sorted(f for f in glob.glob(item, recursive=True) if Path(f).is_file())
            out += [(f, None) for f in files] or [(item, "no files match this pattern")]
        else:
            out.append((item, "no such file"))
    seen: set[str] = set()
    key = lambda e: os.path.realpath(e[0]) if e[1] is None else e[0]  # noqa: E731  (a.png, ./a.png: one file)
    return [e for e in out if not (key(e) in seen or seen.add(key(e)))]  # each file once, first place kept


def names_in(folder: Path, files: list[tuple[str, str | None]]) -> set[str]:
    """The names of the input FILES that lie in FOLDER: outputs written there must not take them."""
    try:
        here = folder.resolve()
        return {Path(f).name for f, error in files if error is None and Path(f).resolve().parent == here}
    except OSError:
        return set()


def unique_name(path: str, suffix: str, used: set[str]) -> str:
    """The file name for PATH's output in one folder: its stem + suffix, or stem-2 + suffix, ...
    when an image of the same name in another folder came first (the name is added to `used`)."""
    stem = Path(path).stem or "image"
    name, n = f"{stem}{suffix}", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}{suffix}"
    used.add(name)
    return name


def _save_normalized(folder: Path, path: str, normalized: np.ndarray, used: set[str]) -> str:
    from PIL import Image

    target = folder / unique_name(path, ".png", used)
    Image.fromarray(np.clip(np.rint(normalized * 255), 0, 255).astype(np.uint8)).save(target)
    return str(target)


def run(inputs: list[str], model=None, top_k: int = 3, min_confidence: float = 0.6, as_json: bool = False,
        save_normalized: str | None = None, threads: int = 1, out=sys.stdout) -> int:
    """Predict every input; print a table (streamed) or a JSON list. Returns the exit status:
    0 if every file was read, 1 if any failed."""
    from .preprocess import preprocess
    from .recognizer import Recognizer

    if not 1 <= top_k <= 10:
        raise DigitrecError(f"--top-k must be between 1 and 10, not {top_k}")
    recognizer = Recognizer.load(model, min_confidence=min_confidence, threads=threads)
    folder = None
    if save_normalized:
        folder = Path(save_normalized)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DigitrecError(f"--save-normalized {folder}: cannot create the folder ({e.strerror or e})") from e
    files = expand(inputs)
    if not files:
        raise DigitrecError("no input images given")
    used = names_in(folder, files) if folder is not None else set()  # never write over an input
    rows: list[dict] = []
    failed = several = 0
    if not as_json:
        print(f"{'path':40s}  {'status':9s}  label  prob    top-{top_k}", file=out)
    from tqdm import tqdm

    bar = tqdm(total=len(files), desc="predict", unit="img", file=sys.stderr, leave=False,
               disable=None if len(files) > BATCH else True)  # only for long jobs on a terminal
    for start in range(0, len(files), BATCH):
        chunk = files[start:start + BATCH]
        normalized, errors = [], []
        for path, error in chunk:
            n = None
            if error is None:
                try:
                    n = preprocess(path)
                except DigitrecError as e:
                    error = str(e).removeprefix(f"{path}: ")
            normalized.append(n)
            errors.append(error)
        ok = [i for i, e in enumerate(errors) if e is None]
        preds = recognizer.predictions([normalized[i] for i in ok])
        answers = dict(zip(ok, preds))
        for i, (path, _) in enumerate(chunk):
            if errors[i] is not None:
                failed += 1
                row = {"path": path, "status": "error", "label": None, "probability": None,
                       "top_k": [], "not_one_digit": None, "error": errors[i]}
            else:
                p = answers[i]
                row = {"path": path, **p.to_dict(top_k), "error": None}
                row["probability"] = round(row["probability"], 6)
                row["top_k"] = [[k, round(v, 6)] for k, v in row["top_k"]]
                if folder is not None and p.normalized is not None:
                    row["normalized"] = _save_normalized(folder, path, p.normalized, used)
            several += (row["not_one_digit"] or 0.0) >= SEVERAL
            if as_json:
                rows.append(row)
            else:
                print(_table_row(row), file=out, flush=True)
        bar.update(len(chunk))
    bar.close()
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        print(f"{len(files)} image(s), {failed} failed; model {recognizer.name} "
              f"({recognizer.source}), uncertain below {min_confidence:g}", file=out)
        if several:
            print(f"{several} image(s) look like more than one digit: `digitrec ocr` reads numbers", file=out)
    return 1 if failed else 0


def _table_row(row: dict) -> str:
    path = row["path"] if len(row["path"]) <= 40 else "…" + row["path"][-39:]
    if row["status"] == "error":
        return f"{path:40s}  {'error':9s}  {row['error']}"
    label = "-" if row["label"] is None else str(row["label"])
    prob = "-" if row["status"] == "no_digit" else f"{row['probability']:.3f}"
    top = " ".join(f"{k}:{v:.3f}" for k, v in row["top_k"])
    several = f"  not one digit: {row['not_one_digit']:.3f}" if row["not_one_digit"] >= SEVERAL else ""
    return f"{path:40s}  {row['status']:9s}  {label:5s}  {prob:6s}  {top}{several}"
