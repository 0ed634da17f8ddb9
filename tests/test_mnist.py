"""The IDX reader, checksums, data-directory search and mirror download of mnist.py."""

import gzip
import struct

import numpy as np
import pytest

from digitrec import mnist
from digitrec.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


def test_parse_idx_roundtrip_images_and_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    (tmp_path / "img").write_bytes(idx_bytes(images))
    (tmp_path / "lbl.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert np.array_equal(mnist.parse_idx(mnist.read_file(tmp_path / "img")), images)
    assert np.array_equal(mnist.parse_idx(mnist.read_file(tmp_path / "lbl.gz")), labels)


def test_bad_magic_number_is_refused():
    data = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    data[2] = 0x0D  # float type code: not what MNIST uses
    with pytest.raises(DataError, match="bad IDX magic"):
        mnist.parse_idx(bytes(data), "x")
    with pytest.raises(DataError, match="bad IDX magic"):
        mnist.parse_idx(b"\x12\x34\x08\x01" + b"\0" * 8, "x")


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_truncated_file_is_refused(cut):
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(DataError, match="truncated"):
        mnist.parse_idx(data[:-cut] if cut < 100 else data[:10], "t10k")


def test_trailing_bytes_are_refused():
    with pytest.raises(DataError, match="trailing"):
        mnist.parse_idx(idx_bytes(np.zeros(3, np.uint8)) + b"\0", "x")


def test_corrupt_gzip_names_the_file(tmp_path):
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        mnist.read_file(bad)


def fake_mnist_dir(tmp_path):
    """A folder with all four names present but holding wrong (tiny) data."""
    for name in mnist.SHA256:
        arr = np.zeros((2, 28, 28) if "images" in name else (2,), np.uint8)
        (tmp_path / name).write_bytes(idx_bytes(arr))
    return tmp_path


def test_checksum_mismatch_names_file_and_both_sums(tmp_path):
    with pytest.raises(DataError) as e:
        mnist.load(fake_mnist_dir(tmp_path))
    msg = str(e.value)
    assert "checksum mismatch" in msg and "train-images-idx3-ubyte" in msg
    assert mnist.SHA256["train-images-idx3-ubyte"] in msg  # expected
    assert "actual   sha256 " in msg


def test_real_mnist_loads_and_verifies():
    data = mnist.load()
    assert data["train"][0].shape == (60000, 28, 28) and data["test"][0].shape == (10000, 28, 28)
    assert data["train"][1].max() == 9 and np.bincount(data["test"][1]).tolist()[1] == 1135


def test_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "env"))
    dirs = mnist.candidate_dirs()
    assert dirs[0] == tmp_path / "env" and dirs[-1] == mnist.cache_dir()
    assert mnist.candidate_dirs(tmp_path / "explicit") == [tmp_path / "explicit"]


def test_a_parent_folder_holding_mnist_serves_as_data_dir_and_in_the_environment(tmp_path, monkeypatch):
    """`--data-dir ../shared/datasets` and `DIGITREC_DATA=../shared/datasets` alike find mnist/ in it."""
    (tmp_path / "mnist").mkdir()
    assert mnist.candidate_dirs(tmp_path) == [tmp_path / "mnist"]
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path))
    assert mnist.candidate_dirs()[0] == tmp_path / "mnist"


def test_download_from_second_mirror_verifies_and_writes(tmp_path, monkeypatch):
    src = mnist.locate()  # the real files (shared datasets)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, path in src.items():
        data = mnist.read_file(path)
        (mirror / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    dest = tmp_path / "cache"
    mirrors = [f"file://{tmp_path}/missing/", f"file://{mirror}/"]
    got = mnist.download("t10k-labels-idx1-ubyte", dest, mirrors)
    assert got == dest / "t10k-labels-idx1-ubyte.gz"
    assert not list(dest.glob("*.part")) and not list(dest.glob(".*"))  # atomic: no leftovers
    assert got.stat().st_mode & 0o044 == 0o044 & ~umask()   # readable by others, as any file the user writes
    # a mirror serving corrupt data is skipped, with both failures reported when all fail
    (mirror / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"junk"))
    with pytest.raises(DataError, match="checksum mismatch"):
        mnist.download("t10k-images-idx3-ubyte", dest, mirrors)


def test_offline_error_says_where_it_looked_and_what_to_do(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        mnist.load(empty, mirrors=[f"file://{tmp_path}/nowhere/"])
    msg = str(e.value)
    assert "MNIST was not found" in msg and str(empty) in msg and "--data-dir" in msg and "DIGITREC_DATA" in msg
    assert "nowhere/train-images-idx3-ubyte.gz" in msg   # why the download failed, mirror by mirror


def test_a_mistyped_data_dir_is_not_created(tmp_path):
    typo = tmp_path / "typo"
    with pytest.raises(DataError):
        mnist.load(typo, mirrors=[f"file://{tmp_path}/nowhere/"])
    assert not typo.exists()


def umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
