"""The model registry: a plain dict of names to constructors, and the networks in it.

Every model maps a batch N×1×28×28 (normalized as the checkpoint says) to N×10
logits. Softmax is applied by the loss during training and by inference after
calibration, so "Dense 10 softmax" of the paper is the last Linear plus that softmax.
This module knows nothing about data or training.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


def keras_init_(model: nn.Module) -> nn.Module:
    """Initialize as Keras does: Glorot-uniform weights, zero biases (conv and dense)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class PaperCNN(nn.Module):
    """The paper's CNN (section 3.2): Conv32-Pool-Conv64-Pool-Dense128-Dense10, 225,034 parameters."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.MaxPool2d(2), nn.ReLU(),   # 28 -> 26 -> 13
            nn.Conv2d(32, 64, 3), nn.MaxPool2d(2), nn.ReLU(),  # 13 -> 11 -> 5
        )  # ReLU after the pool: the paper's Conv-ReLU-Pool exactly (ReLU keeps order), on 4× fewer pixels
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class PreActBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016): BN-ReLU-Conv3x3, BN-ReLU-Conv3x3, plus a shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    """A small pre-activation ResNet for 28×28: three stages (28, 14, 7 px), global average pool, Linear."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128), blocks: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)]
        cin = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(PreActBlock(cin, w, stride=2 if (i > 0 and b == 0) else 1))
                cin = w
        layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise, 1×1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_res else out


class MobileNet(nn.Module):
    """A MobileNetV2-style network for 28×28: depthwise-separable inverted residuals, 28 -> 14 -> 7 px."""

    # (expansion, output channels, repeats, first stride)
    SETTINGS = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 48, 2, 2), (4, 64, 1, 1))

    def __init__(self, num_classes: int = 10, stem: int = 16, head: int = 256, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU6()]
        cin = stem
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6(),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _conv_bn_pool(cin: int, cout: int, k: int, padding: int) -> list[nn.Module]:
    """Conv-BN-ReLU then a 2×2 max pool, computed as Conv-BN-MaxPool-ReLU: the same function and
    gradients (ReLU keeps order, so it commutes with max), with the ReLU on 4× fewer pixels."""
    conv, bn, relu = _conv_bn(cin, cout, k, 1, padding)
    return [conv, bn, nn.MaxPool2d(2), relu]


class StrongCNN(nn.Module):
    """A plain CNN with batch norm and dropout, the Kaggle-style design that reaches 99.6–99.7% with augmentation.

    Two blocks of Conv3-Conv3-Conv5/stride 2 (32 then 64 channels, each followed by
    BN-ReLU, then dropout), a 4×4 conv to 128 features, dropout and a Linear.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.4):
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn(1, 32, 3), *_conv_bn(32, 32, 3), *_conv_bn(32, 32, 5, 2, 2), nn.Dropout(dropout),  # 28->26->24->12
            *_conv_bn(32, 64, 3), *_conv_bn(64, 64, 3), *_conv_bn(64, 64, 5, 2, 2), nn.Dropout(dropout),  # 12->10->8->4
            *_conv_bn(64, 128, 4), nn.Flatten(), nn.Dropout(dropout),                                      # 4->1
        )
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class FastCNN(nn.Module):
    """A tiny BN CNN for the `fast` recipes: 99% after one epoch on a 2-core CPU (29,434 params, 4.25 MFLOPs).

    Conv5-Conv3-Conv3 (16, 32, 64 channels), each with BN-ReLU and a 2×2 max pool (pooled before the ReLU)
    (28 -> 14 -> 7 -> 3 px), then one Linear. Batch norm lets it take a large
    learning rate, so it learns in few steps; it is built for time to accuracy, not peak accuracy.
    The `fast` and `fast_plus` recipes use it; `fast_cnn_wide` (20, 40, 80 channels; 43,990
    params, 6.44 MFLOPs) is the `best` recipe's.
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        a, b, c = widths
        self.features = nn.Sequential(
            *_conv_bn_pool(1, a, 5, 2),   # 28 -> 14
            *_conv_bn_pool(a, b, 3, 1),   # 14 -> 7
            *_conv_bn_pool(b, c, 3, 1),   # 7 -> 3
            nn.Flatten(),
        )
        self.classifier = nn.Linear(c * 3 * 3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Deskew(nn.Module):
    """Straighten each digit's slant by its image moments (the classic MNIST deskewing), no parameters.

    The slant is the covariance of column and row over the row variance, weighted by ink
    (pixels above the image's own minimum, its background); each row is shifted sideways by
    slant × (row − centroid row), so the ink's main axis stands upright through its centre
    of mass, which stays where it is. A blank image passes unchanged. Batched, and exported
    to ONNX with the network (GridSample), so predict, serve and OCR deskew as training did.
    """

    MAX_SLANT = 1.0  # at most 45° either way; moments of a few specks can say anything

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        background = x.amin(dim=(2, 3), keepdim=True)
        ink = x - background
        rows = torch.arange(h, dtype=x.dtype).view(1, 1, h, 1)
        cols = torch.arange(w, dtype=x.dtype).view(1, 1, 1, w)
        mass = ink.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)

        def mean(t):  # ink-weighted mean over each image, N×1×1×1
            return (ink * t).sum(dim=(2, 3), keepdim=True) / mass

        my, mx = mean(rows), mean(cols)
        var_y, cov = mean((rows - my) ** 2), mean((rows - my) * (cols - mx))
        slant = (cov / var_y.clamp_min(1e-6)).clamp(-self.MAX_SLANT, self.MAX_SLANT)  # N×1×1×1
        src_x = cols + slant * (rows - my)                                             # N×1×H×W, pixels
        src_y = rows.expand_as(src_x)
        grid = torch.stack([src_x * (2 / (w - 1)) - 1, src_y * (2 / (h - 1)) - 1], dim=-1).squeeze(1)
        return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=True) + background


class Deskewed(nn.Module):
    """A registry model that sees its input deskewed first (`create_model(name, deskew=True)`)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.deskew, self.net = Deskew(), net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.deskew(x))


REGISTRY: dict[str, type[nn.Module] | partial] = {
    "paper_cnn": PaperCNN,
    "fast_cnn": FastCNN,
    "fast_cnn_wide": partial(FastCNN, widths=(20, 40, 80)),
    "resnet": PreActResNet,
    "mobilenet": MobileNet,
    "strong_cnn": StrongCNN,
}


def create_model(name: str, deskew: bool = False, **kwargs) -> nn.Module:
    """The registry's model NAME built with `kwargs`; with deskew, behind a `Deskew` layer."""
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    model = REGISTRY[name](**kwargs)
    return Deskewed(model) if deskew else model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_image(model: nn.Module, size: int = 28) -> int:
    """Floating-point operations of one forward pass on a 1×size×size image (a multiply-add counts as 2).

    Counted by torch's FlopCounterMode (convolutions, matrix products); element-wise
    ops (ReLU, BN, pooling) are not counted, as is usual.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, size, size))
    model.train(was_training)
    return counter.get_total_flops()
