"""The model registry: every model maps N×1×28×28 to N×10 finite logits and can learn; FLOP counts."""

import pytest
import torch
import torch.nn.functional as F

from digitrec.models import REGISTRY, count_parameters, create_model, flops_per_image


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return torch.from_numpy(x[:32]).unsqueeze(1).float() / 255, torch.from_numpy(y[:32].astype("int64"))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_model_shape_finite_and_one_step_lowers_the_loss(name, batch):
    x, y = batch
    torch.manual_seed(0)
    model = create_model(name).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_now():
        torch.manual_seed(1)  # same dropout masks before and after the step
        return F.cross_entropy(model(x), y)

    loss = loss_now()
    assert model(x).shape == (32, 10)
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = loss_now()
    assert after < loss
    with torch.inference_mode():
        out = model.eval()(x)
    assert out.shape == (32, 10) and torch.isfinite(out).all()


def test_channels_last_gives_the_same_outputs(batch):
    x, _ = batch
    for name in REGISTRY:
        model = create_model(name).eval()
        with torch.inference_mode():
            ref = model(x)
            nhwc = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(nhwc, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["paper_cnn", "fast_cnn"])
def test_pooling_before_the_relu_is_the_usual_order_exactly(name, batch):
    """The pooling models compute Conv(-BN)-MaxPool-ReLU, for speed; the textbook (and the paper's)
    Conv(-BN)-ReLU-MaxPool with the same weights gives the same outputs and gradients, bit for bit."""
    x, y = batch
    torch.manual_seed(0)
    model = create_model(name).train()
    layers = list(model.features)
    usual = [m for i, m in enumerate(layers) if not isinstance(m, torch.nn.ReLU)]
    for i, m in enumerate(layers):
        if isinstance(m, torch.nn.ReLU):
            assert isinstance(layers[i - 1], torch.nn.MaxPool2d)  # every pool has its ReLU right after it
            usual.insert(usual.index(layers[i - 1]), m)
    twin = torch.nn.Sequential(torch.nn.Sequential(*usual), model.classifier)
    assert [type(m) for m in usual] != [type(m) for m in layers]
    outputs, grads = [], []
    for net in (model, twin):
        net.zero_grad()
        out = net(x)
        F.cross_entropy(out, y).backward()
        outputs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert torch.equal(outputs[0], outputs[1])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_paper_cnn_flops_match_hand_count():
    # multiply-adds x2: conv1 26·26·32·9, conv2 11·11·64·32·9, dense 1600·128 and 128·10
    expected = 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 128 + 128 * 10)
    assert flops_per_image(create_model("paper_cnn")) == expected
    assert count_parameters(create_model("paper_cnn")) == 225_034


def test_fast_cnn_is_small():
    model = create_model("fast_cnn")
    assert count_parameters(model) == 29_434
    assert flops_per_image(model) == 2 * (28 * 28 * 16 * 25 + 14 * 14 * 32 * 16 * 9 + 7 * 7 * 64 * 32 * 9 + 576 * 10)


def test_new_models_are_registered_and_bigger_in_compute():
    assert {"paper_cnn", "resnet", "mobilenet", "strong_cnn"} <= set(REGISTRY)
    base = flops_per_image(create_model("paper_cnn"))
    for name in ("resnet", "mobilenet", "strong_cnn"):
        assert flops_per_image(create_model(name)) > base


def _moments(t):
    """Per image: ink mass, centroid row, and slant (column-row covariance over row variance)."""
    ink = t - t.amin(dim=(2, 3), keepdim=True)
    h, w = t.shape[2:]
    r, c = torch.arange(h).float().view(1, 1, h, 1), torch.arange(w).float().view(1, 1, 1, w)
    m = ink.sum((2, 3), keepdim=True)
    my, mx = (ink * r).sum((2, 3), keepdim=True) / m, (ink * c).sum((2, 3), keepdim=True) / m
    slant = (ink * (r - my) * (c - mx)).sum((2, 3)) / (ink * (r - my) ** 2).sum((2, 3))
    return m.flatten(), my.flatten(), slant.flatten()


def _shear(t, s):
    """Each row shifted sideways by s × (row − 13.5): a digit slanted by s more."""
    n, _, h, w = t.shape
    r = torch.arange(h).float().view(h, 1).expand(h, w)
    c = torch.arange(w).float().view(1, w).expand(h, w)
    grid = torch.stack([(c - s * (r - 13.5)) * 2 / (w - 1) - 1, r * 2 / (h - 1) - 1], -1).expand(n, h, w, 2)
    return F.grid_sample(t, grid, align_corners=True)


def test_deskew_stands_digits_upright_and_undoes_a_shear(batch):
    from digitrec.models import Deskew

    x, _ = batch
    deskew = Deskew()
    mass, row, slant = _moments(x)
    assert slant.abs().max() > 0.2  # MNIST digits do slant
    for s in (0.0, -0.4, 0.3):
        sheared = _shear(x, s)
        out = deskew(sheared)
        m2, row2, slant2 = _moments(out)
        assert slant2.abs().max() < 1e-3                       # upright
        torch.testing.assert_close(m2, _moments(sheared)[0], rtol=2e-3, atol=0)  # no ink lost
        torch.testing.assert_close(row2, _moments(sheared)[1], rtol=0, atol=1e-3)  # centre of mass kept
        if s:  # a sheared digit deskews to about what the digit itself deskews to
            moved = (sheared - x).abs().sum((1, 2, 3)) / x.sum((1, 2, 3))
            back = (out - deskew(x)).abs().sum((1, 2, 3)) / x.sum((1, 2, 3))
            assert back.mean() < 0.6 * moved.mean()
    blank = torch.zeros(2, 1, 28, 28)
    assert torch.equal(deskew(blank), blank)
    normalized = (x - 0.1307) / 0.3081  # background below 0 stays the background
    assert torch.isclose(deskew(normalized).amin(), normalized.amin())


def test_a_deskewed_model_has_the_same_parameters_and_learns(batch):
    x, y = batch
    torch.manual_seed(0)
    model = create_model("fast_cnn", deskew=True)
    assert count_parameters(model) == count_parameters(create_model("fast_cnn")) == 29_434
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert F.cross_entropy(model(x), y) < loss
