"""preprocess: MNIST normalization, polarity, transparency, lighting, specks, formats and hostile files."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digitrec import preprocess as preprocess_module
from digitrec.errors import ImageError
from digitrec.preprocess import load_image, normalize_digit, preprocess, to_ink


def seven(size=300, ink=20, paper=235, width=None) -> Image.Image:
    """A '7' drawn dark on light, off-centre on a larger canvas."""
    im = Image.new("L", (size, size), paper)
    d = ImageDraw.Draw(im)
    w = width or size // 25
    d.line([(size * 0.2, size * 0.25), (size * 0.55, size * 0.25), (size * 0.35, size * 0.7)], fill=ink, width=w)
    return im


def com(a):
    ys, xs = np.mgrid[: a.shape[0], : a.shape[1]]
    return (a * ys).sum() / a.sum(), (a * xs).sum() / a.sum()


def bbox(a, thr=0.0):
    rows, cols = np.flatnonzero((a > thr).any(1)), np.flatnonzero((a > thr).any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def png_bytes(im, fmt="PNG", **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# -- the MNIST form ---------------------------------------------------------------------
def test_normalize_digit_is_mnist_form():
    ink = np.zeros((90, 60), np.float32)
    ink[10:80, 25:35] = 1.0          # a tall bar: 70 × 10
    out = normalize_digit(ink)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    h, w = bbox(out, 0.05)
    assert h == 20 and 2 <= w <= 4     # longer side 20, aspect ratio kept
    cy, cx = com(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_normalize_digit_none_without_ink():
    assert normalize_digit(np.zeros((40, 40))) is None
    assert normalize_digit(np.full((40, 40), 0.01)) is None


def test_mnist_digits_come_back_unchanged(mnist_test):
    """An MNIST digit is already in MNIST form: normalizing it again changes little."""
    x, _ = mnist_test
    for d in x[:50]:
        out = normalize_digit(d / 255.0)
        assert np.abs(out - d / 255.0).mean() < 0.06


# -- polarity, transparency, lighting, specks ------------------------------------------
def test_dark_on_light_and_light_on_dark_agree():
    a = preprocess(seven())
    b = preprocess(Image.fromarray(255 - np.asarray(seven())))
    assert a is not None and b is not None
    assert np.abs(a - b).max() < 0.05
    assert a[4:24, 4:24].max() > 0.9 and a[0, :].max() == 0  # ink high, margins empty


def test_transparent_canvas_exports():
    """Black (or white) strokes on transparent pixels, as an HTML canvas exports them."""
    ref = preprocess(seven())
    for stroke in (0, 255):
        rgba = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
        alpha = 255 - np.asarray(seven(ink=0, paper=255))
        layer = np.zeros((300, 300, 4), np.uint8)
        layer[..., :3] = stroke
        layer[..., 3] = alpha
        rgba = Image.fromarray(layer, "RGBA")
        out = preprocess(png_bytes(rgba))
        assert out is not None and np.abs(out - ref).max() < 0.1, stroke


def test_uneven_lighting():
    im = np.asarray(seven(ink=30, paper=200), np.float32)
    ramp = np.linspace(0.45, 1.15, im.shape[1])[None, :]  # a shadow across the page
    shaded = Image.fromarray(np.clip(im * ramp, 0, 255).astype(np.uint8))
    a, b = preprocess(seven(ink=30, paper=200)), preprocess(shaded)
    assert np.abs(a - b).mean() < 0.03


def test_specks_are_removed():
    clean = seven()
    dirty = np.asarray(clean).copy()
    rng = np.random.default_rng(0)
    for y, x in rng.integers(5, 295, (25, 2)):
        if not (60 <= y <= 220 and 50 <= x <= 180):   # away from the strokes
            dirty[y:y + 3, x:x + 3] = 20
    a, b = preprocess(clean), preprocess(Image.fromarray(dirty))
    assert np.abs(a - b).max() < 0.05


def test_a_stroke_that_fades_in_places_stays_whole():
    """A 3-px pen line at full strength, then a stretch at a quarter of it (a pen running dry, a
    light scan): the faint stretch joins the strokes at both its ends, so it is kept, not erased
    as background between two pieces (to_ink used to keep only 1 px of rim around strong ink)."""
    ink = np.zeros((80, 60), np.float32)
    ink[10:70, 28:31] = 1.0
    ink[30:50, 28:31] = 0.25
    out = to_ink(Image.fromarray((235 - 205 * ink).round().astype(np.uint8)), max_side=200)
    assert out[33:47, 28:31].min() > 0.15                  # the faint stretch is there...
    assert ndimage.label(out > 0, structure=np.ones((3, 3)))[1] == 1  # ...and the line is one piece
    assert out[:, :20].max() == 0 and out[:, 40:].max() == 0  # the paper stays blank


def test_faint_ink_is_not_the_paper_noise_around_a_stroke(monkeypatch):
    """On a grainy, low-contrast photo the paper's noise around a stroke reaches the faint level too;
    it is kept only where it stands NOISE σ above the paper, so the stroke keeps no halo of grain
    (without that guard, two thirds of the paper around the line would be kept)."""
    rng = np.random.default_rng(0)
    ink = np.zeros((120, 120), np.float32)
    ink[20:100, 58:62] = 1.0
    gray = 200 - 60 * ink + rng.normal(0, 18, ink.shape)
    image = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
    far = np.ones(ink.shape, bool)
    far[14:106, 52:68] = False                               # more than 6 px from the line
    assert (to_ink(image, max_side=200)[far] > 0).mean() < 0.01
    monkeypatch.setattr(preprocess_module, "NOISE", 0.0)
    assert (to_ink(image, max_side=200)[far] > 0).mean() > 0.05


@pytest.mark.parametrize("make", [
    lambda: Image.new("L", (200, 200), 255),
    lambda: Image.new("RGB", (64, 48), (0, 0, 0)),
    lambda: Image.new("RGBA", (100, 100), (0, 0, 0, 0)),
    lambda: Image.fromarray(np.clip(np.random.default_rng(1).normal(220, 4, (300, 300)), 0, 255).astype(np.uint8)),
])
def test_blank_images_have_no_digit(make):
    assert preprocess(make()) is None
    assert not to_ink(make()).any()


# -- formats and inputs ----------------------------------------------------------------
@pytest.mark.parametrize("fmt,mode", [("PNG", "L"), ("PNG", "RGB"), ("PNG", "P"), ("PNG", "I;16"),
                                      ("JPEG", "L"), ("JPEG", "RGB"), ("BMP", "RGB"), ("GIF", "P"),
                                      ("TIFF", "L"), ("WEBP", "RGB")])
def test_formats(fmt, mode, tmp_path):
    im = seven()
    if mode == "I;16":
        im = Image.fromarray(np.asarray(im).astype(np.uint16) * 257)
    else:
        im = im.convert(mode)
    path = tmp_path / f"seven.{fmt.lower()}"
    im.save(path, fmt)
    ref = preprocess(seven())
    out = preprocess(path)
    assert out is not None and np.abs(out - ref).mean() < 0.03


def test_sources_agree(tmp_path):
    im = seven()
    data = png_bytes(im)
    (tmp_path / "s.png").write_bytes(data)
    ref = preprocess(im)
    for source in (tmp_path / "s.png", str(tmp_path / "s.png"), data, io.BytesIO(data),
                   np.asarray(im), np.asarray(im) / 255.0):
        assert np.abs(preprocess(source) - ref).max() < 1e-6


def test_deep_and_float_images_agree_however_given():
    """A 16-bit scan (full range or 12 bits stored in 16) and float images in [0, 1] read as the
    8-bit image does, as numpy arrays and as PIL images alike."""
    a = np.asarray(seven(size=112))
    ref = preprocess(a)
    scan = (8000 + a / 255 * 52000).astype(np.uint16)
    twelve = a.astype(np.uint16) * 16
    for source in (scan, Image.fromarray(scan), twelve, Image.fromarray(twelve), png_bytes(Image.fromarray(twelve)),
                   Image.fromarray(a.astype(np.int32) * 100, "I"), Image.fromarray(a.astype(np.float32) / 255, "F"),
                   Image.fromarray(a.astype(np.float32), "F"), seven(size=112).convert("LA").convert("La")):
        out = preprocess(source)
        assert out is not None and np.abs(out - ref).mean() < 0.02, type(source)


# -- hostile files ---------------------------------------------------------------------
def crafted_png(width, height) -> bytes:
    """A PNG whose header declares width×height (nothing of that size is ever allocated)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("name,data,words", [
    ("zero.png", b"", "empty file"),
    ("text.png", b"this is a text file, not an image\n", "not an image"),
    ("bomb.png", crafted_png(50_000, 50_000), "too large: 2,500,000,000 pixels declared (limit 40,000,000)"),
    ("bomb2.png", crafted_png(10_000, 5_000), "too large: 10000×5000 pixels declared"),  # over our cap, under Pillow's
    ("truncated.png", png_bytes(seven())[:400], "truncated"),
    ("truncated.jpg", png_bytes(seven(), "JPEG")[:600], "truncated"),
    ("garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "cannot decode"),
])
def test_hostile_files_are_refused(tmp_path, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    for source in (path, data):
        with pytest.raises(ImageError) as e:
            preprocess(source)
        assert words in str(e.value), str(e.value)
    assert name in str(pytest.raises(ImageError, load_image, path).value)


def test_missing_file_and_bad_source(tmp_path):
    for source, words in [(io.StringIO("hello"), "opened in binary mode"), ("x" * 300 + ".png", "cannot open"),
                          (Image.open(io.BytesIO(png_bytes(seven())[:-300])), "cannot decode")]:
        with pytest.raises(ImageError, match=words):  # not a raw OSError or ValueError from deep inside
            preprocess(source)
    closed = io.BytesIO(png_bytes(seven()))
    closed.close()
    with pytest.raises(ImageError, match="cannot read the file object"):
        preprocess(closed)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)
    with pytest.raises(ImageError):
        load_image(12345)
    with pytest.raises(ImageError):
        load_image(np.zeros((3, 3, 7)))


def test_small_digit_in_a_large_photo(mnist_test):
    """A 60-px digit on a 3000×2000 page is re-cut at full resolution, not normalized from ~6 pixels."""
    x, _ = mnist_test
    d = x[0]
    page = np.full((2000, 3000), 225, np.uint8)
    small = np.asarray(Image.fromarray(d).resize((60, 60), Image.Resampling.BICUBIC), np.float32)
    page[1200:1260, 700:760] = (225 - 200 * small / 255).astype(np.uint8)
    out = preprocess(png_bytes(Image.fromarray(page), "JPEG", quality=90))
    assert out is not None and np.abs(out - d / 255.0).mean() < 0.04


def test_digit_filling_the_frame():
    """A tight crop, where ink covers most pixels, still has its polarity detected."""
    im = Image.new("L", (60, 60), 230)
    ImageDraw.Draw(im).ellipse([2, 2, 57, 57], outline=20, width=18)   # a fat '0' filling the frame
    a = np.asarray(im)
    assert (a < 128).mean() > 0.5
    out = preprocess(im)
    assert out is not None and out[14, 14] < 0.2 and out[14, 5:10].max() > 0.8   # a ring: hollow centre


def test_digits_cropped_to_their_ink_keep_their_polarity(mnist_test):
    """MNIST digits cut at their ink's bounding box, as they are and inverted: strokes cross the
    border, so no ring inside it is taken for the paper (48 of these 2,000 were, before)."""
    from digitrec.preprocess import _light_background

    wrong = 0
    for a in mnist_test[0].astype(np.float32) / 255:
        rows, cols = np.nonzero(a > 0.1)
        tight = a[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        wrong += _light_background(tight) + (not _light_background(1 - tight))
    assert wrong <= 12   # 10: thin 1s, a bar of ink either way


def test_exif_orientation_is_applied():
    """A phone photo stored sideways with EXIF orientation 6 (rotate 90° clockwise to view)."""
    upright = seven()
    stored = upright.rotate(90, expand=True)        # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    data = png_bytes(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert np.abs(preprocess(data) - preprocess(upright)).mean() < 0.03
    assert np.abs(preprocess(Image.open(io.BytesIO(data))) - preprocess(upright)).mean() < 0.03  # a PIL image too
