"""The handwriting datasets: each publisher's format parsed from small generated files (corrupt lines
included), the real files' checksums and class counts, folders and CSVs, the Semeion split, mixtures."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from digitrec import datasets, handwriting
from digitrec.errors import DataError

from conftest import SHARED

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------ USPS

def _usps_line(label, pixels):
    return f"{label:.4f} " + " ".join(f"{v:.4f}" for v in pixels)


def test_usps_parser_maps_background_to_zero_and_ink_to_one(tmp_path):
    pix = -np.ones(256)
    pix[:16] = 1.0  # the top row is ink
    path = tmp_path / "zip.train.gz"
    path.write_bytes(gzip.compress((_usps_line(3, pix) + "\n" + _usps_line(7, -pix) + "\n").encode()))
    ink, labels = handwriting.parse_usps(path)
    assert labels.tolist() == [3, 7]
    assert ink.shape == (2, 16, 16)
    assert ink[0, 0].tolist() == [1.0] * 16 and ink[0, 1:].max() == 0.0
    assert ink[1, 0].max() == 0.0 and ink[1, 1:].min() == 1.0


@pytest.mark.parametrize("bad, message", [
    ("5.0000 " + " ".join(["-1"] * 200), "expected 257 numbers, found 201"),
    ("12.0000 " + " ".join(["-1"] * 256), "label '12.0000' is not a digit"),
    ("4.0000 " + " ".join(["-1"] * 255) + " x", "not a number"),
    ("4.0000 " + " ".join(["-1"] * 255) + " 3.5", "[-1, 1]"),
])
def test_usps_corrupt_line_names_file_and_line(tmp_path, bad, message):
    path = tmp_path / "zip.test"
    path.write_text(_usps_line(1, -np.ones(256)) + "\n" + bad + "\n")
    with pytest.raises(DataError) as e:
        handwriting.parse_usps(path)
    assert f"{path}, line 2" in str(e.value) and message in str(e.value)


def test_usps_truncated_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "zip.train.gz"
    path.write_bytes(gzip.compress(_usps_line(1, -np.ones(256)).encode())[:-10])
    with pytest.raises(DataError, match="cannot read"):
        handwriting.parse_usps(path)


# ------------------------------------------------------------------ Semeion

def _semeion_line(label, pixels):
    onehot = np.eye(10)[label]
    return " ".join(f"{v:.4f}" for v in np.concatenate([pixels, onehot])) + " "


def test_semeion_parser(tmp_path):
    pix = (RNG.random(256) > 0.5).astype(float)
    path = tmp_path / "semeion.data"
    path.write_text(_semeion_line(9, pix) + "\n" + _semeion_line(0, 1 - pix) + "\n")
    ink, labels = handwriting.parse_semeion(path)
    assert labels.tolist() == [9, 0]
    assert np.array_equal(ink[0].ravel(), pix) and np.array_equal(ink[1].ravel(), 1 - pix)


def test_semeion_bad_one_hot_names_line(tmp_path):
    good = _semeion_line(2, np.zeros(256))
    bad = " ".join(["0.0000"] * 256 + ["1.0000", "1.0000"] + ["0.0000"] * 8)
    path = tmp_path / "semeion.data"
    path.write_text(good + "\n" + good + "\n" + bad + "\n")
    with pytest.raises(DataError, match=r"semeion.data, line 3: the last 10 columns must be a one-hot label"):
        handwriting.parse_semeion(path)


# ------------------------------------------------------------------ optdigits

def _optdigits_file(path, digits, ntot=None, eof=True):
    header = ["BU handwritten digit database: E Alpaydin C Kaynak 1995", "Test file", "",
              "entwidth = 32", "entheight = 32", "depth = 1", "density = 300", "whitepix = 0",
              f"ntot = {len(digits) if ntot is None else ntot}"]
    header += [f"field{i} = 0" for i in range(21 - len(header))]
    body = []
    for bitmap, label in digits:
        body += ["".join("1" if v else "0" for v in row) for row in bitmap] + [f" {label}"]
    path.write_text("\n".join(header + body + (["EOF"] if eof else [])))
    return path


def test_optdigits_parser(tmp_path):
    a = RNG.random((32, 32)) > 0.5
    b = np.zeros((32, 32), bool)
    b[10:20, 5] = True
    path = _optdigits_file(tmp_path / "optdigits-orig.windep", [(a, 4), (b, 8)])
    ink, labels = handwriting.parse_optdigits(path)
    assert labels.tolist() == [4, 8]
    assert np.array_equal(ink[0], a) and np.array_equal(ink[1], b)
    # the training file has no EOF line
    assert handwriting.parse_optdigits(_optdigits_file(tmp_path / "t.tra", [(a, 1)], eof=False))[1].tolist() == [1]


def test_optdigits_corrupt_row_and_count(tmp_path):
    a = np.zeros((32, 32), bool)
    path = _optdigits_file(tmp_path / "x.tra", [(a, 1), (a, 2)])
    lines = path.read_text().split("\n")
    lines[21 + 33 + 5] = "0" * 31 + "2"  # second digit, sixth row
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=rf"x.tra, line {21 + 33 + 6}: expected 32 characters"):
        handwriting.parse_optdigits(path)
    with pytest.raises(DataError, match="declares ntot = 3 digits, the file holds 2"):
        handwriting.parse_optdigits(_optdigits_file(tmp_path / "y.tra", [(a, 1), (a, 2)], ntot=3))
    (tmp_path / "z").write_text("hello\n")
    with pytest.raises(DataError, match="not an optdigits bitmap file"):
        handwriting.parse_optdigits(tmp_path / "z")


# ------------------------------------------------------------------ CSV (Kaggle layout)

def test_csv_28x28_is_taken_as_mnist_form(tmp_path):
    images = RNG.integers(0, 256, (3, 28, 28))
    path = tmp_path / "train.csv"
    rows = [",".join(["label"] + [f"pixel{i}" for i in range(784)])]
    rows += [",".join(map(str, [lab, *img.ravel()])) for lab, img in zip([5, 0, 9], images)]
    path.write_text("\n".join(rows) + "\n")
    data = datasets.load(str(path))
    assert data["train"] is data["test"]  # one pool
    assert data["train"].labels.tolist() == [5, 0, 9]
    assert np.array_equal(data["train"].images.numpy(), images.astype(np.uint8))


def test_csv_without_a_header_is_read_as_with_one(tmp_path):
    """The common "MNIST in CSV" files have no header: label and 784 pixels on every line."""
    images = RNG.integers(0, 256, (3, 28, 28))
    rows = [",".join(map(str, [lab, *img.ravel()])) for lab, img in zip([5, 0, 9], images)]
    path = tmp_path / "mnist_test.csv"
    path.write_text("\n".join(rows) + "\n")
    x, y = handwriting.parse_csv(path)
    assert y.tolist() == [5, 0, 9] and np.array_equal(np.round(x * 255).astype(int), images)
    path.write_text("\n".join(rows[:1] + ["7,1,2"]) + "\n")
    with pytest.raises(DataError, match=r"mnist_test.csv, line 2: expected 785 values, found 3"):
        handwriting.parse_csv(path)  # line numbers count from the first row of digits
    path.write_text("label,p0\n3,0\n")  # one pixel is no image
    with pytest.raises(DataError, match=r"line 1: .* 8×8 or more"):
        handwriting.parse_csv(path)


def test_csv_other_sizes_are_normalized_and_bad_rows_named(tmp_path):
    img = np.zeros((16, 16), int)
    img[2:14, 7:9] = 255  # a "1" filling the frame
    path = tmp_path / "small.csv"
    header = ",".join(["label"] + [f"pixel{i}" for i in range(256)])
    path.write_text(header + "\n" + ",".join(map(str, [1, *img.ravel()])) + "\n")
    images, labels = handwriting.load_csv(path)["train"]
    assert images.shape == (1, 28, 28) and labels.tolist() == [1]
    rows = np.nonzero(images[0].max(1))[0]
    assert rows.max() - rows.min() + 1 == 20  # the ink box scaled to 20 px
    path.write_text(header + "\n" + ",".join(map(str, [1, *img.ravel()])) + "\n" + "1,2,3\n")
    with pytest.raises(DataError, match=r"small.csv, line 3: expected 257 values, found 3"):
        handwriting.parse_csv(path)
    path.write_text("id,a,b\n1,2,3\n")
    with pytest.raises(DataError, match="line 1: expected a header 'label,pixel0"):
        handwriting.parse_csv(path)


# ------------------------------------------------------------------ a folder of images

def _digit_png(path, label, size=64):
    img = Image.new("L", (size, size), 255)  # dark ink on white paper, like a photo or scan
    d = ImageDraw.Draw(img)
    if label == 1:
        d.line([(size // 2, 8), (size // 2, size - 8)], fill=0, width=6)
    else:
        d.ellipse([14, 8, size - 14, size - 8], outline=0, width=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def test_folder_loader(tmp_path):
    for i in range(3):
        _digit_png(tmp_path / "0" / f"a{i}.png", 0)
        _digit_png(tmp_path / "1" / f"b{i}.jpg", 1)
    (tmp_path / "notes.txt").write_text("ignored")
    images, labels, files = handwriting.read_folder(tmp_path)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] and len(files) == 6
    assert images.dtype == np.uint8 and images.shape == (6, 28, 28)
    one = images[3].astype(float)
    cols = np.nonzero(one.max(0) > 40)[0]
    rows = np.nonzero(one.max(1) > 40)[0]
    assert rows.max() - rows.min() >= 18 and cols.max() - cols.min() <= 8  # a tall thin stroke, MNIST form
    assert images[0, 0].max() == 0  # white paper became background
    data = datasets.load(str(tmp_path))
    assert data["train"] is data["test"] and len(data["train"]) == 6


def test_folder_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        handwriting.read_folder(tmp_path)
    _digit_png(tmp_path / "3" / "ok.png", 0)
    Image.new("L", (30, 30), 255).save(tmp_path / "3" / "blank.png")
    with pytest.raises(DataError, match=r"blank.png: no ink found"):
        handwriting.read_folder(tmp_path)
    (tmp_path / "3" / "blank.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"blank.png"):
        handwriting.read_folder(tmp_path)


def test_folder_with_train_and_test(tmp_path):
    for split, n in (("train", 2), ("test", 1)):
        for i in range(n):
            _digit_png(tmp_path / split / "7" / f"{i}.png", 0)
    data = datasets.load(str(tmp_path))
    assert len(data["train"]) == 2 and len(data["test"]) == 1


# ------------------------------------------------------------------ the real files in ../shared

REAL = [("usps", "zip.train.gz", handwriting.parse_usps), ("usps", "zip.test.gz", handwriting.parse_usps),
        ("semeion", "semeion.data", handwriting.parse_semeion),
        ("optdigits", "optdigits-orig.tra", handwriting.parse_optdigits),
        ("optdigits", "optdigits-orig.windep", handwriting.parse_optdigits)]


@pytest.mark.parametrize("name, fname, parse", REAL)
def test_real_files_checksums_and_class_counts(name, fname, parse):
    path = SHARED / name / fname
    published = dict(line.split()[::-1] for line in (SHARED / name / "SHA256SUMS").read_text().splitlines())
    assert handwriting.SHA256[name][fname] == published[fname]
    handwriting.verify(name, path, path.read_bytes())
    ink, labels = parse(path)
    handwriting.check_counts(path, labels)  # raises on any difference
    assert np.bincount(labels, minlength=10).tolist() == handwriting.CLASS_COUNTS[fname]
    assert ink.min() == 0.0 and ink.max() == 1.0


def test_optdigits_windep_matches_scikit_learns_digits():
    """UCI derived the 8×8 optdigits (scikit-learn's load_digits) by counting ink in 4×4 blocks."""
    from sklearn.datasets import load_digits

    ink, labels = handwriting.parse_optdigits(SHARED / "optdigits" / "optdigits-orig.windep")
    digits = load_digits()
    assert np.array_equal(labels, digits.target)
    assert np.array_equal(ink.reshape(-1, 8, 4, 8, 4).sum((2, 4)), digits.images)


def test_checksum_mismatch_and_missing_files(tmp_path):
    data = bytearray((SHARED / "semeion" / "semeion.data").read_bytes())
    data[100] ^= 1
    (tmp_path / "semeion.data").write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        handwriting.load_semeion(tmp_path)
    with pytest.raises(DataError, match="usps was not found"):
        handwriting.load_usps(tmp_path)


def test_data_dir_may_be_the_parent_folder(tmp_path):
    shutil.copytree(SHARED / "semeion", tmp_path / "semeion")
    assert len(datasets.load("semeion", tmp_path)["test"]) == 797


def test_semeion_split_is_fixed_and_stratified():
    _, labels = handwriting.parse_semeion(SHARED / "semeion" / "semeion.data")
    train, test = handwriting.semeion_split(labels)
    assert len(train) == 796 and len(test) == 797 and not set(train) & set(test)
    counts = np.bincount(labels[test], minlength=10)
    assert (np.abs(counts - np.bincount(labels, minlength=10) / 2) <= 0.5).all()
    # pinned: a change of seed or method would silently move digits between train and test
    assert hashlib.sha256(test.astype(np.int64).tobytes()).hexdigest()[:16] == SEMEION_TEST_HASH


SEMEION_TEST_HASH = "bc640570e1569bc2"  # the first 16 hex digits of the sha256 of the test indices


def test_named_loaders_give_mnist_form():
    data = datasets.load("optdigits")
    assert data["train"].images.shape == (1934, 28, 28) and data["test"].images.shape == (1797, 28, 28)
    assert data["test"].images.dtype == torch.uint8
    x = data["test"].images.float()
    # MNIST form: the ink's box is at most 20 px on a side, its longer side exactly 20, centred by mass
    ink = x > 0
    rows, cols = ink.any(2), ink.any(1)
    height = 28 - rows.int().argmax(1) - rows.flip(1).int().argmax(1)
    width = 28 - cols.int().argmax(1) - cols.flip(1).int().argmax(1)
    assert torch.maximum(height, width).max() <= 20 and (torch.maximum(height, width) >= 19).float().mean() > 0.99
    mass = x.sum((1, 2))
    cy = (x.sum(2) * torch.arange(28)).sum(1) / mass
    assert (cy - 14).abs().max() < 1.5


# ------------------------------------------------------------------ mixtures

def test_parse_mixture():
    assert datasets.parse_mixture("mnist,usps:3, optdigits:0.5") == [("mnist", 1.0), ("usps", 3.0), ("optdigits", 0.5)]
    with pytest.raises(DataError, match="WEIGHT > 0"):
        datasets.parse_mixture("usps:0")


def test_prepare_mixture_weights_and_own_test_sets():
    d = datasets.prepare("optdigits,semeion:2", val_split=100, limit=500, seed=0)
    assert set(d["tests"]) == {"optdigits", "semeion"}
    assert len(d["tests"]["optdigits"]) == 500 and len(d["tests"]["semeion"]) == 500
    assert len(d["val"]) == 100
    # 1,000 training images minus 100 validation, semeion's part counted twice
    assert len(d["train"]) == 900 + 450


def test_prepare_pool_holds_out_a_test_part(tmp_path):
    for i in range(5):
        for digit in (0, 1):
            _digit_png(tmp_path / str(digit) / f"{i}.png", digit)
    d = datasets.prepare(str(tmp_path), val_split=2, seed=0)
    assert len(d["test"]) == 2 and len(d["val"]) == 1 and len(d["train"]) == 7


def test_unknown_names_and_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'kmnist'; known: mnist, optdigits, semeion, usps"):
        datasets.load("kmnist")
    with pytest.raises(DataError, match="no such folder"):
        datasets.load(str(tmp_path / "missing") + "/")
    with pytest.raises(DataError, match="no such file"):
        datasets.load(str(tmp_path / "missing.csv"))
