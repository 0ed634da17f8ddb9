"""Recognizer and `digitrec predict`: the trusted-reference test, abstaining, the API, the CLI, no torch."""

import io
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from digitrec.errors import DigitrecError
from digitrec.preprocess import preprocess
from digitrec.recognizer import DEFAULT_MODEL, OCR_MODEL, Prediction, Recognizer


_NOISE = np.random.default_rng(123).standard_normal((1024, 1024), dtype=np.float32)


def render_as_photo(digit: np.ndarray, rng, canvas: int = 512) -> bytes:
    """An MNIST digit as a person's photo: enlarged to 200-400 px, dark on light paper,
    off-centre on a large canvas, sensor noise (a random crop of one noise field, for speed),
    JPEG compression."""
    side = int(rng.integers(200, 401))
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float32)
    paper, ink = rng.uniform(190, 240), rng.uniform(10, 70)
    img = np.full((canvas, canvas), paper, np.float32)
    y, x = rng.integers(0, canvas - side, 2)
    img[y:y + side, x:x + side] = paper - (paper - ink) * np.clip(big, 0, 255) / 255.0
    ny, nx = rng.integers(0, 1024 - canvas, 2)
    img += _NOISE[ny:ny + canvas, nx:nx + canvas] * 6.0
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(60, 91)))
    return buf.getvalue()


@pytest.fixture(scope="module")
def default():
    return Recognizer.load()


def test_trusted_reference(default, mnist_test):
    """1,000 MNIST test digits rendered as photos come back through preprocess close to the
    originals: the model's accuracy on them is within 0.5 points of that on the originals."""
    x, y = mnist_test
    rng = np.random.default_rng(0)
    back = np.stack([preprocess(render_as_photo(d, rng)) for d in x])
    orig = x.astype(np.float32) / 255.0
    acc_orig = (default.predict_normalized(orig).argmax(1) == y).mean()
    acc_back = (default.predict_normalized(back).argmax(1) == y).mean()
    print(f"accuracy on 1,000 originals {acc_orig:.4f}, on their photo renders {acc_back:.4f}")
    assert acc_orig > 0.97
    assert abs(acc_back - acc_orig) <= 0.005
    assert np.abs(back - orig).mean() < 0.05


def test_default_model_is_small_and_described(default):
    assert DEFAULT_MODEL.stat().st_size < 1_000_000
    meta = default.metadata
    assert default.name == meta["model"] == "paper_cnn"
    assert meta["calibration"]["temperature"] > 0
    assert {"mean", "std"} <= set(meta["normalization"])
    info = json.loads((DEFAULT_MODEL.parent / "default.json").read_text())
    assert info["train_command"].startswith("digitrec train")
    assert info["onnx_test"]["accuracy"] > 0.98


def test_ocr_reads_with_the_bundled_ocr_model(default, tiny_onnx):
    """The bundled default reads numbers with the bundled OCR model (loaded once); any other
    model reads with itself; `load(ocr=True)` opens the OCR model; its card says how it was made."""
    reader = default.ocr_reader()
    assert reader.source == str(OCR_MODEL) == Recognizer.load(ocr=True).source
    assert default.ocr_reader() is reader and reader.min_confidence == default.min_confidence
    own = Recognizer.load(tiny_onnx)
    assert own.ocr_reader() is own
    info = json.loads((OCR_MODEL.parent / "ocr.json").read_text())
    assert info["file"] == "ocr.onnx" and info["bytes"] == OCR_MODEL.stat().st_size
    assert info["onnx_test"]["accuracy"] > 0.99


def test_api_inputs_named_or_shaped_another_way_read_the_same(default, tiny_run, mnist_test, tmp_path):
    x, y = mnist_test
    assert default.predict(x[0][:, :, None]).probs == default.predict(x[0]).probs  # 28×28×1 is 28×28 too
    assert default.predict_normalized([]).shape == (0, 10)
    for bad, words in [(x[:2].astype(np.float32), r"values in \[0, 1\]"), (np.full((1, 28, 28), np.nan), "NaN")]:
        with pytest.raises(DigitrecError, match=words):  # 0-255 levels would be read confidently wrong
            default.predict_normalized(bad)
    with pytest.raises(DigitrecError, match="takes a list of inputs"):
        default.predict_batch("seven.png")
    alias = Recognizer.load(DEFAULT_MODEL.parent / ".." / "assets" / DEFAULT_MODEL.name)  # the bundled file
    assert alias.ocr_reader().source == str(OCR_MODEL)  # reads numbers with the bundled OCR model all the same
    upper = tmp_path / "BEST.PT"
    upper.write_bytes((tiny_run / "best.pt").read_bytes())
    bare = tmp_path / "exported"  # an ONNX export without its suffix
    from digitrec.export import export
    export(tiny_run / "best.pt", tmp_path / "m.onnx").rename(bare)
    ref = Recognizer.load(tiny_run / "best.pt").predict(x[0]).probs
    assert Recognizer.load(upper).predict(x[0]).probs == Recognizer.load(bare).predict(x[0]).probs == ref
    from digitrec.evaluation import evaluate_checkpoint
    assert evaluate_checkpoint(bare, limit=50).metrics["errors"] == evaluate_checkpoint(upper, limit=50).metrics["errors"]


def test_blank_is_no_digit(default):
    for blank in (Image.new("L", (280, 280), 255), Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
                  np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.float32)):
        p = default.predict(blank)
        assert p.status == "no_digit" and p.label is None and p.top_k == []
        assert p.to_dict() == {"status": "no_digit", "label": None, "probability": 0.0, "top_k": [],
                               "not_one_digit": 0.0}


def test_predict_inputs_agree(default, mnist_test, tmp_path):
    x, y = mnist_test
    d = 255 - x[0]                                  # dark on light, as people write
    im = Image.fromarray(d).resize((280, 280))
    im.save(tmp_path / "d.png")
    answers = [default.predict(s) for s in (tmp_path / "d.png", str(tmp_path / "d.png"),
                                             (tmp_path / "d.png").read_bytes(), im, np.asarray(im))]
    assert {a.label for a in answers} == {int(y[0])}
    a = answers[0]
    assert a.status == "ok" and a.probability == a.probs[a.label] == a.top_k[0][1]
    # ten digit probabilities; the bundled model's 11th "not one digit" class takes the rest
    assert 0.99 < sum(a.probs) <= 1 + 1e-5 and a.normalized.shape == (28, 28)
    assert [k for k, _ in a.top_k] == list(np.argsort(a.probs)[::-1])
    # a 28×28 array is taken as already normalized (uint8 or float)
    assert default.predict(x[1]).label == default.predict(x[1] / 255.0).label == int(y[1])


def test_uncertain_below_min_confidence(mnist_test):
    x, y = mnist_test
    strict = Recognizer.load(min_confidence=1.0)
    p = strict.predict(x[0])
    assert p.status == "uncertain" and p.label == int(y[0])      # still the best guess
    # an ambiguous blob is uncertain at the default threshold
    blob = np.zeros((28, 28), np.float32)
    blob[8:20, 8:20] = 1.0
    assert Recognizer.load(min_confidence=0.999999).predict(blob).status == "uncertain"


def test_batch_and_threads(default, mnist_test):
    x, y = mnist_test
    batch = default.predict_batch(list(x[:64]))
    single = [default.predict(d) for d in x[:64]]
    assert [b.label for b in batch] == [s.label for s in single]
    probs = default.predict_normalized(x[:64] / 255.0)
    assert probs.shape == (64, 10) and (probs.sum(1) <= 1 + 1e-5).all() and np.median(probs.sum(1)) > 0.99
    assert np.allclose(probs, [s.probs for s in single], atol=1e-6)
    results, errors = {}, []

    def work(i):
        try:
            results[i] = [p.label for p in default.predict_batch(list(x[i * 50:(i + 1) * 50]))]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    expected = default.predict_normalized(x[:300] / 255.0).argmax(1).tolist()
    assert sum((results[i] for i in range(6)), []) == expected


def test_load_errors(tmp_path):
    from digitrec.errors import DigitrecError

    with pytest.raises(DigitrecError, match="model not found"):
        Recognizer.load(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(DigitrecError, match="not a loadable ONNX model"):
        Recognizer.load(tmp_path / "bad.onnx")


# -- the CLI ---------------------------------------------------------------------------
def cli_command(*args, code=None):
    return [sys.executable, "-c", code or "import sys; from digitrec.cli import main; sys.exit(main())", *args]


def run_cli(*args, code=None):
    return subprocess.run(cli_command(*args, code=code), capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def images(tmp_path_factory, mnist_test):
    x, y = mnist_test
    d = tmp_path_factory.mktemp("images")
    for i in range(3):
        Image.fromarray(255 - x[i]).resize((140, 140)).save(d / f"digit{i}_{y[i]}.png")
    Image.new("L", (100, 100), 255).save(d / "blank.png")
    (d / "broken.png").write_bytes(b"")
    (d / "notes.jpg").write_text("not an image")
    return d


def test_predict_cli_json(images, tmp_path):
    r = run_cli("predict", str(images), "--json", "--top-k", "2", "--save-normalized", str(tmp_path / "norm"))
    assert r.returncode == 1, r.stderr                      # two files failed
    rows = {row["path"].rsplit("/", 1)[1]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"digit0_7.png", "digit1_2.png", "digit2_1.png", "blank.png", "broken.png", "notes.jpg"}
    for name in ("digit0_7.png", "digit1_2.png", "digit2_1.png"):
        row = rows[name]
        assert row["status"] == "ok" and row["label"] == int(name[-5]) and row["error"] is None
        assert len(row["top_k"]) == 2 and row["top_k"][0] == [row["label"], row["probability"]]
        saved = np.asarray(Image.open(row["normalized"]))
        assert saved.shape == (28, 28) and saved.max() > 200
    assert rows["blank.png"]["status"] == "no_digit" and rows["blank.png"]["label"] is None
    assert rows["broken.png"]["status"] == "error" and "empty file" in rows["broken.png"]["error"]
    assert rows["notes.jpg"]["status"] == "error" and "not an image" in rows["notes.jpg"]["error"]
    for row in rows.values():
        assert set(row) >= {"path", "status", "label", "probability", "top_k", "error"}


def test_predict_never_writes_a_normalized_image_over_an_input(images, tmp_path):
    """--save-normalized into the inputs' own folder: an input's name goes to the next free name."""
    source = images / "digit0_7.png"
    here = tmp_path / "digit0_7.png"
    here.write_bytes(source.read_bytes())
    r = run_cli("predict", str(here), "--json", "--save-normalized", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert here.read_bytes() == source.read_bytes()
    assert json.loads(r.stdout)[0]["normalized"] == str(tmp_path / "digit0_7-2.png")
    r = run_cli("predict", "", "--json")  # an empty argument is no file (Path('') would be the folder)
    assert r.returncode == 1 and json.loads(r.stdout)[0]["error"] == "empty path"


def test_predict_cli_exit_codes_and_table(images):
    ok = run_cli("predict", str(images / "digit*.png"))
    assert ok.returncode == 0, ok.stderr
    assert "digit0_7.png" in ok.stdout and " ok " in ok.stdout and "3 image(s), 0 failed" in ok.stdout
    missing = run_cli("predict", str(images / "digit0_7.png"), str(images / "nope.png"), "--json")
    assert missing.returncode == 1
    rows = json.loads(missing.stdout)
    assert [r["status"] for r in rows] == ["ok", "error"] and rows[1]["error"] == "no such file"
    bad_model = run_cli("predict", str(images), "--model", str(images / "none.onnx"))
    assert bad_model.returncode == 2 and "model not found" in bad_model.stderr
    assert "Traceback" not in bad_model.stderr
    from digitrec.predict import expand

    one = images / "digit0_7.png"
    same = [str(one), str(images / "." / "digit0_7.png"), str(images / "digit0_*.png")]
    assert expand(same) == [(str(one), None)]  # one file, however it is named: listed once
    no_threads = run_cli("predict", str(images), "--threads", "0")
    assert no_threads.returncode == 2 and "--threads must be at least 1; got 0" in no_threads.stderr


def test_version_is_the_installed_package_version():
    from importlib.metadata import version

    import digitrec

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout == f"digitrec {digitrec.__version__}\n"
    assert version("digitrec") == digitrec.__version__  # pyproject reads it from the package: one place


def test_cli_output_into_a_closed_pipe_stops_quietly(images):
    """`digitrec predict ... | head`: the reader goes away before the answer is written; the
    command stops with 141 (as a shell reports SIGPIPE), without a traceback."""
    proc = subprocess.Popen(cli_command("predict", str(images / "digit0_7.png"), "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                                      # nobody reads the answer
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Broken pipe" not in err


def test_predict_does_not_import_torch(images):
    code = ("import sys, json; from digitrec.cli import main; rc = main(); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr); sys.exit(rc)")
    r = run_cli("predict", str(images / "digit0_7.png"), "--json", code=code)
    assert r.returncode == 0, r.stderr
    assert "NO-TORCH" in r.stderr
    assert json.loads(r.stdout)[0]["label"] == 7


def test_without_torch_predict_and_ocr_work_and_training_says_what_to_install(images, tmp_path):
    """An install without the training extra (`pip install digitrec`): torch cannot be imported."""
    code = "import sys; sys.modules['torch'] = None; from digitrec.cli import main; sys.exit(main())"
    r = run_cli("predict", str(images / "digit0_7.png"), "--json", code=code)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["label"] == 7, r.stderr
    r = run_cli("ocr", str(images / "digit0_7.png"), code=code)
    assert r.returncode == 0 and r.stdout.strip() == "7", r.stderr
    r = run_cli("train", "--limit", "100", "--epochs", "1", "--out", str(tmp_path / "run"), code=code)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "needs torch" in r.stderr and "pip install 'digitrec[train]'" in r.stderr
    assert not (tmp_path / "run").exists()
    (tmp_path / "m.pt").write_bytes(b"PK\x03\x04")   # a checkpoint (a zip archive): converting it needs torch
    r = run_cli("predict", str(images / "digit0_7.png"), "--model", str(tmp_path / "m.pt"), code=code)
    assert r.returncode == 2 and "training checkpoint; reading it needs torch" in r.stderr, r.stderr


def test_prediction_to_dict():
    probs = [0.0, 0.02, 0.0, 0.9, 0.0, 0.05, 0.0, 0.0, 0.03, 0.0]
    p = Prediction("ok", 3, 0.9, probs, [[3, 0.9], [5, 0.05], [8, 0.03], [1, 0.02]])
    assert p.to_dict(top_k=2) == {"status": "ok", "label": 3, "probability": 0.9, "top_k": [[3, 0.9], [5, 0.05]],
                                  "not_one_digit": 0.0}
    json.dumps(p.to_dict())
    assert Prediction("no_digit", None, 0.0).to_dict()["not_one_digit"] == 0.0


def test_several_digits_in_one_image_are_not_one_digit(default, tiny_onnx, mnist_test, tmp_path):
    """The bundled model's "not one digit" class: three MNIST digits side by side are not read as one
    (`not_one_digit`, what the ten digits' probabilities leave out); one of them alone is."""
    x, y = mnist_test
    row = np.concatenate([255 - x[i] for i in range(3)], axis=1)  # dark on light, 28×84
    three = default.predict(row)
    assert three.status == "uncertain" and three.not_one_digit > 0.9, three
    alone = [default.predict(Image.fromarray(255 - x[i])) for i in range(3)]
    assert [p.label for p in alone] == y[:3].tolist() and max(p.not_one_digit for p in alone) < 0.1
    assert Recognizer.load(tiny_onnx).predict(row).not_one_digit < 1e-4  # a model without that class
    Image.fromarray(row).save(tmp_path / "number.png")
    r = run_cli("predict", str(tmp_path / "number.png"))
    assert r.returncode == 0 and "not one digit: " in r.stdout
    assert "1 image(s) look like more than one digit: `digitrec ocr` reads numbers" in r.stdout


def test_bad_arrays_and_empty_images_are_image_errors(default):
    from digitrec.errors import ImageError

    for bad in (Image.new("RGB", (0, 0)), np.full((5, 5), "a"), np.full((28, 28), None, object)):
        with pytest.raises(ImageError):
            default.predict(bad)
    with pytest.raises(ImageError, match="no pixels"):
        default.read(Image.new("L", (0, 0)))
    p = default.predict(np.zeros((28, 28), np.float32) + np.eye(28, dtype=np.float32))
    with pytest.raises(ValueError, match="top_k"):
        p.to_dict(top_k=-1)
    with pytest.raises(DigitrecError, match="threads"):
        Recognizer.load(threads=0)
