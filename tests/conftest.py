"""Shared fixtures: a small real training run, made once per test session."""

from pathlib import Path

import pytest

from digitrec.config import TrainConfig
from digitrec.train import fit

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The paper's CNN trained 2 epochs on 4,000 MNIST images; returns the run folder."""
    out = tmp_path_factory.mktemp("tiny_run")
    fit(TrainConfig(limit=4000, epochs=2, val_split=800, seed=0), out, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory) -> Path:
    """tiny_run's best checkpoint exported to ONNX (what `digitrec export` writes)."""
    from digitrec.export import export

    return export(tiny_run / "best.pt", tmp_path_factory.mktemp("tiny_onnx") / "tiny.onnx")


@pytest.fixture(scope="session")
def mnist_test():
    """The first 1,000 MNIST test images (uint8 N×28×28, ink high) and their labels."""
    from digitrec import mnist

    x, y = mnist.load()["test"]
    return x[:1000], y[:1000]
