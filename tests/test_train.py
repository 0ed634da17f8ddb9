"""The trainer on real MNIST slices: it learns, is reproducible, resumes, checkpoints and calibrates."""

import json

import pytest
import torch

from digitrec import checkpoint
from digitrec.config import TrainConfig
from digitrec.errors import DigitrecError
from digitrec.train import fit

QUIET = dict(log=lambda *_: None)


def test_short_training_passes_accuracy_gate(tiny_run):
    history = json.loads((tiny_run / "history.json").read_text())
    assert len(history) == 2
    assert history[-1]["val_acc"] >= 0.90  # 3,200 images, 2 epochs
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_run_folder_contents_and_self_describing_checkpoint(tiny_run):
    for name in ("config.json", "history.json", "history.csv", "last.pt", "best.pt"):
        assert (tiny_run / name).is_file(), name
    assert json.loads((tiny_run / "config.json").read_text())["batch_size"] == 64
    ckpt = checkpoint.load(tiny_run / "best.pt")  # weights_only load
    assert ckpt["model"] == "paper_cnn" and ckpt["normalization"] == {"mean": 0.0, "std": 1.0}
    assert ckpt["config"]["limit"] == 4000 and "optimizer" not in ckpt
    cal = ckpt["calibration"]
    assert 0.2 < cal["temperature"] < 5 and cal["ece_after"] <= cal["ece_before"] + 1e-3
    last = checkpoint.load(tiny_run / "last.pt")
    assert last["epoch"] == 2 and "optimizer" in last and "rng" in last
    model = checkpoint.build_model(ckpt)
    assert not model.training
    # checkpoints get the mode of the run's other files (the umask's), not a temporary file's 0600
    assert (tiny_run / "best.pt").stat().st_mode & 0o777 == (tiny_run / "config.json").stat().st_mode & 0o777
    assert not [p.name for p in tiny_run.iterdir() if p.name.startswith(".")]


def test_same_seed_same_history(tmp_path):
    cfg = TrainConfig(limit=1500, epochs=2, val_split=300, seed=3)
    fit(cfg, tmp_path / "a", **QUIET)
    fit(cfg, tmp_path / "b", **QUIET)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("epoch_time", "images_per_s")} for r in h]  # noqa: E731
    ha, hb = (strip(json.loads((tmp_path / d / "history.json").read_text())) for d in "ab")
    assert ha == hb
    wa, wb = (checkpoint.load(tmp_path / d / "last.pt")["weights"] for d in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_continues_to_the_same_result(tmp_path):
    cfg = TrainConfig(limit=1500, epochs=2, val_split=300, seed=1)
    fit(cfg, tmp_path / "straight", **QUIET)
    fit(TrainConfig(limit=1500, epochs=1, val_split=300, seed=1), tmp_path / "resumed", **QUIET)
    fit(TrainConfig(epochs=2), tmp_path / "resumed", resume=True, **QUIET)
    a = checkpoint.load(tmp_path / "straight" / "last.pt")
    b = checkpoint.load(tmp_path / "resumed" / "last.pt")
    assert b["epoch"] == 2 and b["config"]["limit"] == 1500
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])


def ctrl_c_in_epoch_2(monkeypatch):
    """The user presses Ctrl-C during the second epoch (once: a resumed run goes on)."""
    import digitrec.train as T

    real, calls = T.train_epoch, {"n": 0}

    def interrupted_once(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "train_epoch", interrupted_once)


def test_cli_resume_finishes_the_run_as_it_was_started(tmp_path, monkeypatch):
    """`digitrec train --resume --out RUN` after Ctrl-C: the run's own epochs and --limit, in training and
    in its report, not the command line's defaults."""
    from digitrec.cli import main

    ctrl_c_in_epoch_2(monkeypatch)
    run = tmp_path / "run"
    assert main(["train", "--limit", "1000", "--epochs", "2", "--val-split", "200", "--out", str(run)]) == 130
    assert main(["train", "--resume", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert [row["epoch"] for row in json.loads((run / "history.json").read_text())] == [1, 2]
    assert json.loads((run / "metrics.json").read_text())["n_test"] == 1000  # the run's --limit


def test_unknown_data_leaves_no_run_folder(tmp_path):
    from digitrec.cli import main

    for args in (["--dataset", "nope"], ["--train-on", "mnist,usps:abc"]):
        assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
        assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten(tiny_run):
    with pytest.raises(DigitrecError, match="--resume"):
        fit(TrainConfig(limit=100, epochs=1), tiny_run, **QUIET)


def test_interrupt_leaves_last_complete_checkpoint(tmp_path, monkeypatch):
    ctrl_c_in_epoch_2(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(limit=1000, epochs=3, val_split=200), tmp_path, **QUIET)
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 1
    assert not list(tmp_path.glob("*.part"))


def test_to_input_leaves_its_argument_alone():
    """Floats in 0..255 are scaled like uint8 ones, into a new tensor (the caller's stays as it was)."""
    from digitrec.train import to_input

    u8 = torch.arange(0, 256, dtype=torch.uint8)[:196].reshape(1, 14, 14)
    f = u8.float()
    out_f, out_u = to_input(f, 0.5, 0.25), to_input(u8, 0.5, 0.25)
    torch.testing.assert_close(out_f, out_u)
    torch.testing.assert_close(f, u8.float())  # not divided in place
    assert out_f.shape == (1, 1, 14, 14) and abs(float(out_u[0, 0, 0, 1]) - (1 / 255 - 0.5) / 0.25) < 1e-6


def test_a_temperature_that_would_worsen_the_ece_is_not_kept():
    """On 16 validation images the NLL-best temperature (1.65 here) raises the ECE: T stays 1."""
    from digitrec.calibration import calibrate

    torch.manual_seed(0)
    logits = torch.randn(16, 10) * 3
    labels = torch.randint(0, 10, (16,))
    labels[:12] = logits[:12].argmax(1)
    cal = calibrate(logits, labels)
    assert cal["temperature"] == 1.0 and cal["refused"] == pytest.approx(1.65, abs=0.01)
    assert cal["ece_after"] == cal["ece_before"]
    cal = calibrate(logits * 4, logits.argmax(1))   # an overconfident model, all read right: T is kept
    assert "refused" not in cal and cal["ece_after"] < cal["ece_before"]
