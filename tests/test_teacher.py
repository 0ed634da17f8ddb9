"""Knowledge distillation: the teachers' soft targets, the mixed loss, and a student that learns from them."""

import json

import pytest
import torch
import torch.nn.functional as F

from digitrec import checkpoint
from digitrec.cli import main
from digitrec.config import TrainConfig
from digitrec.errors import DigitrecError
from digitrec.models import create_model
from digitrec.teacher import distill_loss, paths, soft_targets
from digitrec.train import evaluate, fit, predict_logits, to_input, train_epoch


def test_soft_targets_are_the_mean_of_softened_teacher_probabilities(tiny_run, mnist_test):
    images = torch.from_numpy(mnist_test[0][:300])
    best = str(tiny_run / "best.pt")
    soft = soft_targets([best, best], images, temperature=3.0, log=lambda *_: None)
    logits = predict_logits(checkpoint.build_model(checkpoint.load(best)), to_input(images, 0.0, 1.0))
    assert soft.shape == (300, 10)
    torch.testing.assert_close(soft, F.softmax(logits / 3.0, dim=1))
    torch.testing.assert_close(soft.sum(1), torch.ones(300))
    assert (soft.max(1).values < F.softmax(logits, dim=1).max(1).values + 1e-6).all()  # softened


def test_distill_loss_mixes_hard_and_soft_and_skips_rows_without_a_teacher():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 10), torch.randint(10, (6,))
    hard = F.cross_entropy(logits, labels)
    same = F.softmax(logits / 2.0, dim=1)  # the student's own softened output: KL 0
    torch.testing.assert_close(distill_loss(logits, labels, same, 0.7, 2.0), 0.3 * hard)
    none = torch.full((6, 10), float("nan"))
    torch.testing.assert_close(distill_loss(logits, labels, none, 0.7, 2.0), hard)
    other = F.softmax(torch.randn(6, 10), dim=1)
    assert distill_loss(logits, labels, other, 0.7, 2.0) > 0.3 * hard
    eleven = torch.randn(6, 11)  # a student with the "not one digit" class: its 11th output has target 0
    assert torch.isfinite(distill_loss(eleven, labels, other, 0.7, 2.0))


def test_a_student_learns_the_teachers_digits_not_the_labels(mnist_test):
    """Soft targets alone (weight 1) drive learning: with every label wrong, the student reads as the teacher says."""
    images, labels = (torch.from_numpy(a) for a in mnist_test)
    x, y = to_input(images, 0.0, 1.0), labels.long()
    wrong = (y + torch.randint(1, 10, y.shape, generator=torch.Generator().manual_seed(0))) % 10
    teacher = F.one_hot(y[:800], 10).float()  # a teacher that is always right
    torch.manual_seed(0)
    model = create_model("paper_cnn")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        train_epoch(model, opt, x[:800], wrong[:800], 32, g, soft=teacher, teacher_weight=1.0, teacher_temperature=1.0)
    _, acc = evaluate(model, x[800:], y[800:])
    assert acc >= 0.75, acc


def test_fit_with_teachers_records_them_and_trains_beside_ocr_crops(tiny_run, tmp_path):
    cfg = TrainConfig(limit=1200, epochs=1, val_split=200, seed=0, reject=0.1, ocr_lines=10,
                      teacher=str(tiny_run / "b*.pt"))
    best = fit(cfg, tmp_path / "student", log=lambda *_: None)
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["teacher"] == str(tiny_run / "best.pt")  # the glob, resolved
    assert checkpoint.load(best)["config"]["teacher_weight"] == 0.9
    assert json.loads((tmp_path / "student" / "history.json").read_text())[0]["train_loss"] > 0


def test_bad_teacher_is_a_clear_error(tmp_path, tiny_onnx):
    with pytest.raises(DigitrecError, match="matches no file"):
        paths(str(tmp_path / "nothing*.pt"))
    with pytest.raises(DigitrecError, match=r"\.pt checkpoints"):
        paths(str(tiny_onnx))
    with pytest.raises(DigitrecError, match="no such file"):
        fit(TrainConfig(limit=500, epochs=1, val_split=100, teacher=str(tmp_path / "gone.pt")), tmp_path / "r",
            log=lambda *_: None)
    with pytest.raises(DigitrecError, match="temperature must be above 0"):
        fit(TrainConfig(limit=500, epochs=1, val_split=100, teacher=str(tiny_onnx), teacher_temperature=0),
            tmp_path / "r", log=lambda *_: None)
    assert not (tmp_path / "r").exists()  # refused before the run folder is made


def test_cli_bad_teacher_exits_2_with_the_reason(tmp_path, capsys):
    assert main(["train", "--limit", "500", "--epochs", "1", "--teacher", str(tmp_path / "none*.pt"),
                 "--out", str(tmp_path / "run")]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
