"""The paper's CNN exactly (section 3.2): layers, parameter count, Keras initialization."""

import torch

from digitrec.models import PaperCNN, count_parameters, create_model


def test_parameter_count_and_output_shape():
    model = create_model("paper_cnn")
    assert isinstance(model, PaperCNN)
    assert count_parameters(model) == 225_034
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_layer_shapes_match_the_paper():
    m = create_model("paper_cnn")
    shapes = [tuple(p.shape) for p in m.parameters()]
    assert shapes == [(32, 1, 3, 3), (32,), (64, 32, 3, 3), (64,), (128, 1600), (128,), (10, 128), (10,)]


def test_keras_initialization_glorot_uniform_zero_bias():
    torch.manual_seed(0)
    m = create_model("paper_cnn")
    dense = m.classifier[1]
    limit = (6 / (1600 + 128)) ** 0.5  # Glorot-uniform bound
    assert dense.weight.abs().max() <= limit and dense.weight.abs().max() > 0.95 * limit
    assert all(float(b.detach().abs().sum()) == 0 for n, b in m.named_parameters() if n.endswith("bias"))
