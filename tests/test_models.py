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
