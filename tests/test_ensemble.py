"""Ensembles are scored like a single model; an ensemble of one model twice is that model."""

import json

import numpy as np

from digitrec.cli import main
from digitrec.ensemble import evaluate_ensemble
from digitrec.evaluation import evaluate_checkpoint


def test_ensemble_of_a_model_with_itself_is_the_model(tiny_run):
    best = tiny_run / "best.pt"
    single = evaluate_checkpoint(best, limit=500)
    twice = evaluate_ensemble([best, best], limit=500)
    np.testing.assert_allclose(twice.probs, single.probs, atol=1e-6)
    assert twice.metrics["test_accuracy"] == single.metrics["test_accuracy"]


def test_ensemble_members_may_be_onnx_exports(tiny_run, tiny_onnx):
    """A checkpoint and its own export, with and without TTA, ensemble to that model."""
    best = tiny_run / "best.pt"
    for tta in (False, True):
        single = evaluate_ensemble([best, best], limit=300, tta=tta)
        mixed = evaluate_ensemble([best, tiny_onnx], limit=300, tta=tta)
        np.testing.assert_allclose(mixed.probs, single.probs, atol=1e-4)
        assert mixed.metrics["parameters"] == 2 * 225_034


def test_cli_ensemble_with_tta_writes_a_report(tiny_run, tmp_path, capsys):
    best = tiny_run / "best.pt"
    assert main(["ensemble", str(best), str(best), "--tta", "--limit", "300", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["tta"] is True and metrics["n_test"] == 300 and metrics["test_accuracy"] > 0.85
    assert (tmp_path / "report.html").exists()
    assert main(["ensemble", str(best), "--out", str(tmp_path)]) == 2  # one checkpoint, no TTA
    assert main(["ensemble", "runs/p*/best.pt", "--out", str(tmp_path)]) == 2  # a glob that matched nothing
    assert "no such model file: runs/p*/best.pt" in capsys.readouterr().err
