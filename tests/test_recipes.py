"""Recipes resolve into a TrainConfig that is saved with the run; schedules, EMA and augmentation train."""

import json

import pytest
import torch

from digitrec import checkpoint
from digitrec.cli import main
from digitrec.config import TrainConfig
from digitrec.errors import DigitrecError
from digitrec.evaluation import evaluate_checkpoint
from digitrec.recipes import RECIPES, resolve
from digitrec.models import create_model
from digitrec.train import BN_IMAGES, ema_bn_images, fit, make_ema, make_optimizer, make_scheduler, recompute_bn

QUIET = dict(log=lambda *_: None)


def test_resolve_layers_defaults_recipe_and_overrides():
    assert resolve() == TrainConfig()
    fast = resolve("fast")
    assert fast.recipe == "fast" and fast.schedule == "onecycle" and fast.batch_size == RECIPES["fast"]["batch_size"]
    assert resolve("fast", batch_size=32, lr=None).batch_size == 32  # flags win, None means not given
    best = resolve("best")
    assert best.model == "fast_cnn_wide" and best.ema > 0 and best.rotation > 0
    with pytest.raises(DigitrecError, match="unknown recipe"):
        resolve("fastest")
    with pytest.raises(DigitrecError, match="unknown model"):
        resolve("fast", model="vgg")
    assert main(["train", "--schedule", "linear", "--limit", "100"]) == 2


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "0"), ("--limit", "-5"), ("--val-split", "-1"),
    ("--threads", "-1"), ("--reject", "1.5"), ("--ema", "1.5"), ("--label-smoothing", "1"), ("--zoom", "-1"),
    ("--stroke", "2"), ("--thin", "-0.5"), ("--warmup", "2"), ("--lr-decay", "0"), ("--rotation", "-5"),
    ("--teacher-weight", "2"), ("--teacher-temperature", "0"), ("--ocr-lines", "-1"),
])
def test_out_of_range_settings_are_refused_before_the_run_folder(flag, value, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"digitrec: error: {flag} must be ") and float(err.rsplit("got ", 1)[1]) == float(value)
    assert not (tmp_path / "runs").exists()  # nothing written: not even an empty run folder
    name = flag[2:].replace("-", "_")
    with pytest.raises(DigitrecError, match=f"{flag} must be "):  # the Python API refuses it too
        fit(TrainConfig(**{name: type(getattr(TrainConfig(), name))(value)}), tmp_path / "r", **QUIET)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("setting, message", [
    (dict(epochs=1.5), "--epochs must be a whole number; got 1.5"), (dict(limit="100"), "--limit must be a whole"),
    (dict(lr=float("inf")), "--lr must be a finite number; got inf"), (dict(ema=float("nan")), "--ema must be a finite"),
    (dict(epochs=True), "--epochs must be a whole number"),
])
def test_the_python_api_is_checked_as_the_cli_is(setting, message, tmp_path):
    with pytest.raises(DigitrecError, match=message):
        resolve("fast", **setting)
    with pytest.raises(DigitrecError, match=message):
        fit(TrainConfig(**setting), tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()
    (tmp_path / "file").write_text("a file where the run folder would go")
    with pytest.raises(DigitrecError, match="is a file; --out names the run's folder"):
        fit(TrainConfig(epochs=1, limit=100), tmp_path / "file", **QUIET)


def test_cli_recipe_settings_are_saved_with_the_run(tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "--recipe", "fast", "--limit", "500", "--epochs", "1", "--model", "mobilenet",
               "--rotation", "5", "--out", str(out), "--no-report"])
    assert rc == 0
    saved = json.loads((out / "config.json").read_text())
    expected = {**RECIPES["fast"], "recipe": "fast", "epochs": 1, "model": "mobilenet", "rotation": 5.0}
    assert {k: saved[k] for k in expected} == expected
    assert checkpoint.load(out / "best.pt")["config"] == saved
    assert checkpoint.load(out / "best.pt")["model"] == "mobilenet"


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "exponential"])
def test_schedules_move_the_learning_rate(schedule):
    cfg = TrainConfig(schedule=schedule, epochs=2, lr=1e-3, lr_decay=0.5, warmup=0.25)
    model = torch.nn.Linear(2, 2)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=10)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) <= 1e-3 * 1.0001 and lrs[-1] < lrs[5]
    if schedule == "exponential":
        assert lrs[10] == pytest.approx(0.5e-3)
    else:
        assert lrs[0] < lrs[5]  # warm-up


def test_ema_augmentation_and_smoothing_train_and_save_ema_weights(tmp_path):
    cfg = TrainConfig(limit=1500, val_split=300, epochs=2, batch_size=64, lr=2e-3, schedule="onecycle",
                      ema=0.9, label_smoothing=0.1, rotation=8, shift=2, zoom=0.1)
    best = fit(cfg, tmp_path, **QUIET)
    ckpt, last = checkpoint.load(best), checkpoint.load(tmp_path / "last.pt")
    assert ckpt["history"][-1]["val_acc"] >= 0.8
    assert "train_state" not in ckpt and last["train_state"]["ema"] is not None
    # the checkpoint carries the EMA weights, not the raw ones
    raw = last["train_state"]["weights"]
    assert any(not torch.equal(last["weights"][k], raw[k]) for k in raw)


@pytest.mark.parametrize("channels_last", [False, True])
def test_recompute_bn_gives_the_ema_statistics_of_its_own_weights(channels_last):
    torch.manual_seed(0)
    ema = make_ema(create_model("fast_cnn"), 0.9).module.eval()
    bn = next(m for m in ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.fill_(5.0)  # stale statistics, as averaged from the live weights
    seen = []
    bn.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].detach()))
    x = torch.randn(512, 1, 28, 28)  # two whole batches of 256: update_bn's mean of batch means is exact
    with torch.no_grad():
        ema(x)  # the first BN's input does not depend on any BN statistics
    expected = seen[0].mean((0, 2, 3))
    recompute_bn(ema, x, channels_last)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert not ema.training  # the mode it had


def test_ema_bn_images_are_batches_made_as_training_makes_them():
    x, y = torch.rand(BN_IMAGES + 1000, 1, 28, 28), torch.randint(0, 10, (BN_IMAGES + 1000,))
    cfg = TrainConfig(batch_size=64, reject=0.25)
    images = ema_bn_images(x, y, cfg, None, epoch=3)
    assert images.shape == (BN_IMAGES, 1, 28, 28)
    rows = {r.numpy().tobytes() for r in x}
    originals = sum(im.numpy().tobytes() in rows for im in images)  # images that are training images unchanged
    assert originals == BN_IMAGES * 3 // 4  # the rest are touching pairs, a quarter of each batch
    assert torch.equal(images, ema_bn_images(x, y, cfg, None, epoch=3))
    assert not torch.equal(images, ema_bn_images(x, y, cfg, None, epoch=4))


def test_resume_with_a_schedule_matches_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(limit=1000, val_split=200, epochs=2, schedule="onecycle", ema=0.9, rotation=5, seed=2)
    fit(cfg, tmp_path / "straight", **QUIET)
    # the same run stopped after epoch 1: reproduce by training epoch 1 then resuming
    import digitrec.train as train

    calls = {"n": 0}
    real = train.train_epoch

    def stop_after_one(*a, **k):
        if calls["n"] == 1:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*a, **k)

    train.train_epoch = stop_after_one
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, tmp_path / "resumed", **QUIET)
    finally:
        train.train_epoch = real
    fit(TrainConfig(epochs=2), tmp_path / "resumed", resume=True, **QUIET)
    a, b = checkpoint.load(tmp_path / "straight" / "last.pt"), checkpoint.load(tmp_path / "resumed" / "last.pt")
    assert a["history"][-1]["val_acc"] == b["history"][-1]["val_acc"]
    for k in a["weights"]:
        torch.testing.assert_close(a["weights"][k], b["weights"][k])


def test_resuming_a_fixed_schedule_with_other_epochs_is_refused(tmp_path):
    fit(TrainConfig(limit=500, val_split=100, epochs=1, schedule="cosine"), tmp_path, **QUIET)
    with pytest.raises(DigitrecError, match="--epochs 1"):
        fit(TrainConfig(epochs=3), tmp_path, resume=True, **QUIET)


def test_fast_recipe_learns_in_one_epoch_on_a_slice(tmp_path):
    """The `fast` recipe as the CLI runs it (fast_cnn, one one-cycle epoch) on 18,000 images: a real accuracy gate."""
    out = tmp_path / "fast"
    args = ["--recipe", "fast", "--limit", "20000", "--val-split", "2000", "--out", str(out), "--no-report"]
    assert main(["train", *args]) == 0
    ckpt = checkpoint.load(out / "best.pt")
    assert ckpt["model"] == "fast_cnn" and ckpt["config"]["epochs"] == 1
    assert ckpt["history"][-1]["val_acc"] >= 0.96, ckpt["history"]
    assert evaluate_checkpoint(out / "best.pt", limit=2000).metrics["test_accuracy"] >= 0.96


def test_bf16_precision_trains_in_bfloat16_and_keeps_float32_weights(tmp_path):
    """`--precision bf16` runs the forward pass in bfloat16 (other numbers than fp32's, same seed), still
    learns, and saves float32 weights that evaluate as any checkpoint's."""
    args = ["--recipe", "fast", "--limit", "8000", "--val-split", "1000", "--no-report"]
    for precision in ("fp32", "bf16"):
        assert main(["train", *args, "--precision", precision, "--out", str(tmp_path / precision)]) == 0
    fp32, bf16 = (checkpoint.load(tmp_path / p / "best.pt") for p in ("fp32", "bf16"))
    assert bf16["config"]["precision"] == "bf16" and fp32["config"]["precision"] == "fp32"
    assert bf16["history"][0]["train_loss"] != fp32["history"][0]["train_loss"]
    assert all(w.dtype == torch.float32 for w in bf16["weights"].values() if w.is_floating_point())
    assert bf16["history"][-1]["val_acc"] >= 0.95, bf16["history"]
    assert abs(bf16["history"][-1]["val_acc"] - fp32["history"][-1]["val_acc"]) <= 0.01
    assert evaluate_checkpoint(tmp_path / "bf16" / "best.pt", limit=2000).metrics["test_accuracy"] >= 0.95
    assert main(["train", "--precision", "fp16", "--limit", "100"]) == 2


def test_reject_class_trains_an_eleventh_output_that_exports_as_ten_digits(tmp_path):
    """--reject: touching pairs become an 11th class; probabilities keep 10 digits and drop for a pair."""
    from digitrec.augment import touching_pairs
    from digitrec.evaluation import calibrated_probs
    from digitrec.export import export
    from digitrec.recognizer import Recognizer
    from digitrec.train import to_input

    cfg = TrainConfig(limit=6000, val_split=1000, epochs=2, batch_size=64, lr=3e-3, schedule="onecycle",
                      model="fast_cnn", reject=0.15, seed=0)
    best = fit(cfg, tmp_path, **QUIET)
    ckpt = checkpoint.load(best)
    assert ckpt["model_kwargs"] == {"num_classes": 11}
    assert checkpoint.build_model(ckpt)(torch.zeros(2, 1, 28, 28)).shape == (2, 11)
    from digitrec import datasets

    test = datasets.load("mnist")["test"].head(500)
    single = calibrated_probs(ckpt, test.images)
    assert single.shape == (500, 10)
    assert (single.argmax(1) == test.labels).float().mean() > 0.9
    pairs = touching_pairs(to_input(test.images, 0.0, 1.0), 500, torch.Generator().manual_seed(1))
    pair_images = (pairs.squeeze(1) * 255).round().clamp(0, 255).to(torch.uint8)
    merged = calibrated_probs(ckpt, pair_images)
    assert merged.max(1).values.median() < 0.5 < single.max(1).values.median()
    onnx_path = export(best, tmp_path / "m.onnx")
    rec = Recognizer.load(onnx_path)
    probs = rec.predict_normalized(pair_images[:50].numpy().astype("float32") / 255)
    assert probs.shape == (50, 10)
    torch.testing.assert_close(torch.from_numpy(probs), merged[:50], atol=1e-4, rtol=1e-3)
