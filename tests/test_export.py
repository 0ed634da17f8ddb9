"""ONNX export: parity with PyTorch on real digits, metadata, dynamic batch, the CLI."""

import json
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from digitrec import checkpoint
from digitrec.errors import DigitrecError
from digitrec.recognizer import Recognizer


@pytest.fixture(scope="module")
def ckpt(tiny_run):
    return checkpoint.load(tiny_run / "best.pt")


def torch_reference(ckpt, pixels: np.ndarray):
    """What the checkpoint computes in PyTorch: normalization, network, softmax(logits / T)."""
    model = checkpoint.build_model(ckpt)
    norm, t = ckpt["normalization"], ckpt["calibration"]["temperature"]
    x = (torch.from_numpy(pixels)[:, None] - norm["mean"]) / norm["std"]
    with torch.inference_mode():
        logits = model(x)
    return torch.softmax(logits / t, 1).numpy(), logits.numpy()


def test_onnx_matches_pytorch_on_real_digits(ckpt, tiny_onnx, mnist_test):
    x, _ = mnist_test
    pixels = x.astype(np.float32) / 255.0
    probs_pt, logits_pt = torch_reference(ckpt, pixels)
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    probs, logits = sess.run(["probs", "logits"], {"pixels": pixels[:, None]})
    assert probs.shape == (1000, 10)
    print(f"ONNX Runtime vs PyTorch on 1,000 MNIST test digits: max |probs diff| "
          f"{np.abs(probs - probs_pt).max():.2e}, max |logits diff| {np.abs(logits - logits_pt).max():.2e}")
    assert np.abs(probs - probs_pt).max() <= 1e-4
    assert np.abs(logits - logits_pt).max() <= 1e-4
    assert (probs.argmax(1) == probs_pt.argmax(1)).all()
    # the calibration is in the graph: T is not 1 after `digitrec train`
    assert ckpt["calibration"]["temperature"] != 1.0
    assert np.abs(probs - torch.softmax(torch.from_numpy(logits), 1).numpy()).max() > 1e-4


def test_dynamic_batch(tiny_onnx, mnist_test):
    x, _ = mnist_test
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    full = sess.run(["probs"], {"pixels": x[:300, None].astype(np.float32) / 255})[0]
    for n in (1, 7):
        part = sess.run(["probs"], {"pixels": x[:n, None].astype(np.float32) / 255})[0]
        assert np.abs(part - full[:n]).max() < 1e-5


def test_metadata(ckpt, tiny_onnx):
    model = onnx.load(str(tiny_onnx))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["pixels"]
    assert [o.name for o in model.graph.output] == ["probs", "logits"]
    meta = json.loads({p.key: p.value for p in model.metadata_props}["digitrec"])
    assert meta["model"] == "paper_cnn"
    assert meta["normalization"] == ckpt["normalization"]
    assert meta["calibration"]["temperature"] == pytest.approx(ckpt["calibration"]["temperature"])
    assert {"ece_before", "ece_after"} <= set(meta["calibration"])
    assert meta["config"]["limit"] == 4000 and meta["metrics"]["val_acc"] > 0.8


def test_recognizer_loads_checkpoint_and_onnx_alike(tiny_run, tiny_onnx, mnist_test):
    x, _ = mnist_test
    a = Recognizer.load(tiny_run / "best.pt").predict_normalized(x[:100] / 255.0)
    b = Recognizer.load(tiny_onnx).predict_normalized(x[:100] / 255.0)
    assert np.abs(a - b).max() < 1e-6


def test_export_cli(tiny_run, tmp_path, capsys):
    from digitrec.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_run / "best.pt"), "-o", str(out)]) == 0
    assert out.is_file() and out.stat().st_size < 1_000_000 and "wrote" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "none.pt"), "-o", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["export", str(tiny_run / "best.pt"), "-o", str(tmp_path)]) == 2  # a folder, not a file
    assert capsys.readouterr().err == f"digitrec: error: {tmp_path} is a folder; give the .onnx file to write\n"
    assert not list(tmp_path.glob(".*.part"))  # nothing half-written left behind
    from digitrec.ensemble import evaluate_ensemble
    from digitrec.errors import DigitrecError
    from digitrec.export import export
    with pytest.raises(DigitrecError, match="nothing to export"):
        export([], tmp_path / "none.onnx")
    for paths in ([], str(out)):  # nothing, or one path where a list belongs
        with pytest.raises(DigitrecError, match="an ensemble needs a list of model files"):
            evaluate_ensemble(paths)
    assert main(["evaluate", str(out), "--limit", "10", "--out", str(out)]) == 2  # a file, not a folder
    assert "File exists" in capsys.readouterr().err
    assert main(["export", str(out), "-o", str(tmp_path / "again.onnx")]) == 2  # already exported
    assert "is an exported ONNX model, not a training checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "again.onnx").exists()
    assert main(["evaluate", str(out), "--limit", "-5"]) == 2
    assert "--limit must be 0 (all) or more; got -5" in capsys.readouterr().err


def test_ensemble_file_averages_its_members(tiny_run, tiny_onnx, mnist_test, tmp_path, capsys):
    """`digitrec export A.pt B.onnx -o E.onnx`: E's probs are ensemble.combine of A's and B's, in one
    session: the mean over the ten digits, and the digit mass of B, the member with a reject class."""
    from digitrec.cli import main
    from digitrec.ensemble import combine
    from digitrec.recognizer import DEFAULT_MODEL

    x, _ = mnist_test
    pixels = np.concatenate([x[:200] / 255.0, np.maximum(x[200:210], x[210:220]) / 255.0])  # + 10 merged pairs
    out = tmp_path / "ens.onnx"
    assert main(["export", str(tiny_run / "best.pt"), str(DEFAULT_MODEL), "-o", str(out)]) == 0
    ens = Recognizer.load(out).predict_normalized(pixels)
    a = Recognizer.load(tiny_onnx).predict_normalized(pixels)
    b = Recognizer.load(DEFAULT_MODEL).predict_normalized(pixels)
    assert not np.allclose(a, b, atol=1e-3)  # two different members, so the mean is a real test
    assert np.abs(a.sum(1) - 1).max() < 1e-5 and b[200:].sum(1).min() < 0.1  # B doubts some overlays, A cannot
    want = (a / a.sum(1, keepdims=True) + b / b.sum(1, keepdims=True)) / 2 * b.sum(1, keepdims=True)
    assert np.abs(ens - want).max() < 1e-6
    assert np.abs(ens - combine([torch.from_numpy(a), torch.from_numpy(b)], [False, True]).numpy()).max() < 1e-6
    ens = Recognizer.load(out)
    assert ens.name == "ensemble(paper_cnn, paper_cnn)" and len(ens.metadata["members"]) == 2
    assert [m["calibration"]["temperature"] for m in ens.metadata["members"]] == [
        Recognizer.load(tiny_onnx).metadata["calibration"]["temperature"],
        Recognizer.load(DEFAULT_MODEL).metadata["calibration"]["temperature"]]


def test_half_weights_halve_the_file_and_keep_the_answers(tiny_onnx, mnist_test):
    from digitrec.export import half_weights

    x, _ = mnist_test
    pixels = x[:300] / 255.0
    full = tiny_onnx.read_bytes()
    half = half_weights(full)
    assert 0.45 < len(half) / len(full) < 0.55
    a = Recognizer(full).predict_normalized(pixels)
    b = Recognizer(half).predict_normalized(pixels)
    assert np.abs(a - b).max() < 1e-2 and (a.argmax(1) == b.argmax(1)).all()
    assert Recognizer(half).metadata == Recognizer(full).metadata  # what the file says about itself stays


def test_ensemble_export_refuses_bad_members(tiny_onnx, tmp_path, capsys):
    from digitrec.cli import main

    out = tmp_path / "ens.onnx"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    for member, message in [(tmp_path / "none.onnx", "model not found"),
                            (junk, f"ensemble member 2 ({junk}): not an ONNX model")]:
        assert main(["export", str(tiny_onnx), str(member), "-o", str(out)]) == 2
        assert message in capsys.readouterr().err
    other = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(other.SerializeToString())
    assert main(["export", str(tiny_onnx), str(foreign), "-o", str(out)]) == 2
    assert "not a digitrec export" in capsys.readouterr().err
    assert not out.exists()


def test_a_deskewing_model_exports_with_its_deskew(tmp_path, mnist_test):
    """`digitrec train --deskew yes`: the deskew is part of the network, so the .onnx file deskews
    exactly as PyTorch does, and the checkpoint says how to rebuild it."""
    from digitrec.config import TrainConfig
    from digitrec.export import to_onnx_bytes
    from digitrec.train import fit

    best = fit(TrainConfig(limit=4000, epochs=1, val_split=800, deskew=True), tmp_path / "run", log=lambda *_: None)
    ckpt = checkpoint.load(best)
    assert ckpt["model_kwargs"] == {"deskew": True} and ckpt["config"]["deskew"] is True
    x, y = mnist_test
    pixels = x.astype(np.float32) / 255.0
    probs_pt, _ = torch_reference(ckpt, pixels)
    probs = Recognizer(to_onnx_bytes(ckpt)).predict_normalized(pixels)
    assert np.abs(probs - probs_pt).max() <= 1e-4
    assert (probs.argmax(1) == y).mean() > 0.85  # one epoch on 3,200 images


def test_export_never_writes_over_a_model_it_reads(tiny_run, tmp_path, capsys):
    from digitrec.cli import main

    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes((tiny_run / "best.pt").read_bytes())
    before = ckpt.read_bytes()
    assert main(["export", str(ckpt), "-o", str(tmp_path / "." / "best.pt")]) == 2
    assert "one of the models to export" in capsys.readouterr().err and ckpt.read_bytes() == before
    blocked = tmp_path / "a_file" / "m.onnx"  # under a file: no folder can be made there
    (tmp_path / "a_file").write_bytes(b"")
    assert main(["export", str(ckpt), "-o", str(blocked)]) == 2
    assert f"{blocked}: cannot write it" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(model="nosuch"), "unknown model 'nosuch'"),
    (lambda c: c.pop("weights"), "no weights"),
    (lambda c: c["weights"].pop(next(iter(c["weights"]))), "do not fit model 'paper_cnn'"),
    (lambda c: c.update(model_kwargs={"foo": 1}), "do not fit model 'paper_cnn'"),
    (lambda c: c.pop("normalization"), "no input normalization"),
    (lambda c: next(iter(c["weights"].values())).fill_(float("nan")), "NaN or infinite"),
    (lambda c: c.update(calibration={"temperature": 0.0}), "temperature 0.0"),
])
def test_a_checkpoint_that_cannot_be_used_is_refused_by_name(tiny_run, tmp_path, capsys, change, message):
    """A file marked as a digitrec checkpoint with contents that do not make a model: one line naming
    the file and what is wrong, exit 2, from every command that reads it (no traceback, no NaN answers)."""
    from digitrec.cli import main

    ckpt = checkpoint.load(tiny_run / "best.pt")
    change(ckpt)
    bad = tmp_path / "bad.pt"
    checkpoint.save(bad, ckpt)
    for args in (["predict", str(tiny_run / "history.csv"), "--model", str(bad)],
                 ["evaluate", str(bad), "--limit", "10"], ["export", str(bad), "-o", str(tmp_path / "x.onnx")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{bad}: not a usable digitrec checkpoint" in err and message in err, (args, err)


def test_an_onnx_model_that_does_not_give_ten_probabilities_is_refused(tmp_path):
    five = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Flatten", ["pixels"], ["flat"]),
         onnx.helper.make_node("Slice", ["flat", "lo", "hi", "axis"], ["probs"]),
         onnx.helper.make_node("Identity", ["probs"], ["logits"])], "g",
        [onnx.helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, ["n", 1, 28, 28])],
        [onnx.helper.make_tensor_value_info("probs", onnx.TensorProto.FLOAT, ["n", 5]),
         onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["n", 5])],
        [onnx.numpy_helper.from_array(np.array([0], np.int64), "lo"),
         onnx.numpy_helper.from_array(np.array([5], np.int64), "hi"),
         onnx.numpy_helper.from_array(np.array([1], np.int64), "axis")]),
        opset_imports=[onnx.helper.make_opsetid("", 17)])
    path = tmp_path / "five.onnx"
    path.write_bytes(five.SerializeToString())
    with pytest.raises(DigitrecError, match=r"10 digit probabilities per image expected; it gives shape \[1, 5\]"):
        Recognizer.load(path)


def test_members_of_an_ensemble_file_rebuild_it_exactly(mnist_test):
    """export.members undoes export.average: each member as the export it was (its own metadata), and
    their average computes what the file did, to the bit (the bundled OCR reader of three members)."""
    from digitrec.export import average, members
    from digitrec.recognizer import OCR_MODEL

    data = OCR_MODEL.read_bytes()
    parts = members(data)
    whole = Recognizer(data)
    assert len(parts) == len(whole.metadata["members"]) == 3
    assert [Recognizer(p).metadata for p in parts] == whole.metadata["members"]
    x = mnist_test[0][:200].astype(np.float32) / 255.0
    assert np.array_equal(Recognizer(average(parts)).predict_normalized(x), whole.predict_normalized(x))
    assert not np.array_equal(Recognizer(parts[0]).predict_normalized(x), whole.predict_normalized(x))
    single = parts[1]
    assert members(single) == [single]
