"""Batched augmentation: shapes, identity at zero magnitude, determinism under a seed, label preservation."""

import pytest
import numpy as np
from scipy import ndimage
import torch

from digitrec import checkpoint
from digitrec.augment import Augment, affine_theta, stroke_width, touching_pairs
from digitrec.train import predict_logits, to_input


@pytest.fixture(scope="module")
def x(mnist_test):
    return to_input(torch.from_numpy(mnist_test[0][:256]), 0.0, 1.0)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_zero_magnitudes_are_the_identity(x):
    aug = Augment()
    assert not aug.active and aug(x, gen(0)) is x


def test_identity_matrix_resamples_exactly(x):
    theta = affine_theta(len(x), 0.0, 0.0, 0.0)  # all draws scaled by 0
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw", [dict(rotation=15), dict(shift=3), dict(zoom=0.15), dict(elastic=2.0), dict(stroke=0.8),
                                dict(rotation=10, shift=2.5, zoom=0.1, elastic=1.5, stroke=0.5)])
def test_shape_range_and_seeded_determinism(x, kw):
    aug = Augment(**kw)
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.isfinite(a).all()
    assert a.min() >= -1e-5 and a.max() <= 1 + 1e-5  # bilinear: convex combinations of [0, 1] pixels
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, x)


def test_shift_moves_the_centre_of_ink_by_at_most_the_shift(x):
    def centre(imgs):
        w = imgs.squeeze(1).clamp_min(0)
        grid = torch.arange(28.0)
        m = w.sum((1, 2))
        return torch.stack([(w.sum(1) * grid).sum(1) / m, (w.sum(2) * grid).sum(1) / m], 1)

    out = Augment(shift=3)(x, gen(1))
    moved = (centre(out) - centre(x)).abs()
    assert moved.max() <= 3.2 and moved.mean() > 0.5
    # ink is kept (MNIST digits sit well inside the frame)
    ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ratio.min() > 0.9


def test_stroke_width_thickens_and_thins_by_the_drawn_amount(x):
    n = len(x)
    ink = x.sum((1, 2, 3))
    thick = stroke_width(x, 1.0, gen(0))
    t = (torch.rand(n, generator=gen(0)) * 2 - 1)  # the same draws stroke_width made
    grown, shrunk = thick.sum((1, 2, 3)) > ink + 1, thick.sum((1, 2, 3)) < ink - 1
    assert (grown == (t > 0)).float().mean() > 0.95 and (shrunk == (t < 0)).float().mean() > 0.95
    full = stroke_width(x, 0.0, gen(0))
    torch.testing.assert_close(full, x)
    assert torch.equal(stroke_width(torch.zeros(3, 1, 28, 28), 1.0, gen(1)), torch.zeros(3, 1, 28, 28))


def test_stroke_thinning_has_its_own_limit(x):
    """thin=0: the same draws thicken as before, and no image gets thinner; thin=-1 is the symmetric default."""
    ink = x.sum((1, 2, 3))
    t = torch.rand(len(x), generator=gen(0)) * 2 - 1
    only_thicker = stroke_width(x, 1.0, gen(0), thin=0.0)
    torch.testing.assert_close(only_thicker[t > 0], stroke_width(x, 1.0, gen(0))[t > 0])
    torch.testing.assert_close(only_thicker[t <= 0], x[t <= 0])
    less_thin = stroke_width(x, 1.0, gen(0), thin=0.25).sum((1, 2, 3))
    assert (less_thin[t < 0] > stroke_width(x, 1.0, gen(0)).sum((1, 2, 3))[t < 0]).all()
    assert (less_thin[t < 0] < ink[t < 0]).all()
    assert torch.equal(stroke_width(x, 0.6, gen(0), thin=-1.0), stroke_width(x, 0.6, gen(0), thin=0.6))


def test_background_is_kept_after_normalization():
    blank = torch.full((4, 1, 28, 28), -0.4242)
    out = Augment(rotation=20, shift=3, zoom=0.2, stroke=1.0, background=-0.4242)(blank, gen(0))
    torch.testing.assert_close(out, blank)


def test_labels_are_preserved(tiny_run, mnist_test):
    """Each augmented image stays in its place (paired with its label) and still reads as its digit."""
    x = to_input(torch.from_numpy(mnist_test[0]), 0.0, 1.0)
    y = mnist_test[1]
    augmented = Augment(rotation=5, shift=1, zoom=0.05)(x, gen(3))
    # each augmented image stays far more like its own original than like another image
    a, o = augmented.flatten(1), x.flatten(1)
    sim = (a / a.norm(dim=1, keepdim=True)) @ (o / o.norm(dim=1, keepdim=True)).T
    own, other = sim.diag().median(), sim[torch.arange(len(x)), torch.arange(len(x)).roll(1)].median()
    assert own > 0.8 and own > other + 0.3, (own, other)
    model = checkpoint.build_model(checkpoint.load(tiny_run / "best.pt"))
    plain = (predict_logits(model, x).argmax(1).numpy() == y).mean()
    acc = (predict_logits(model, augmented).argmax(1).numpy() == y).mean()
    assert plain > 0.9 and acc > plain - 0.1, (plain, acc)


def test_touching_pairs_are_two_digits_framed_as_one(x):
    out = touching_pairs(x, 64, gen(5))
    again = touching_pairs(x, 64, gen(5))
    assert out.shape == (64, 1, 28, 28) and torch.equal(out, again) and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1 + 1e-5

    def aspect(imgs):  # width / height of the ink's box
        m = imgs.squeeze(1) > 0.3
        w = m.any(1).float().sum(1)
        h = m.any(2).float().sum(1)
        return w / h

    # a pair fills the 20-px box by its width, single MNIST digits by their height
    assert aspect(out).median() > 1.0 and aspect(x).median() < 0.9
    assert (out.squeeze(1) > 0.3).any(2).float().sum(1).median() <= 21  # width within the 20-px box
    # slid in until the inks touch: the pair's ink is one piece about as often as single digits' is
    pieces = lambda imgs: [ndimage.label(m, structure=np.ones((3, 3)))[1] for m in (imgs.squeeze(1) > 0.2).numpy()]
    one = lambda imgs: np.mean([p == 1 for p in pieces(imgs)])
    assert one(out) >= one(x[:64]) - 0.15, (one(out), one(x[:64]))


def test_no_room_for_pairs_gives_an_empty_batch(x):
    assert touching_pairs(x, 0).shape == (0, 1, 28, 28)
