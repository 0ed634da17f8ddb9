"""Data augmentation on whole batches of tensors: random affine (rotation, shift, zoom), elastic distortion
and stroke width (thicker or thinner pen).

Every transform acts on a float batch N×1×H×W at once through `F.affine_grid` /
`F.grid_sample` (no per-image Python, no torchvision), draws its randomness from
a `torch.Generator` (same seed, same images), and leaves the labels alone. Pixels
that come from outside the image get the background value (what a blank pixel
is after normalization). With every magnitude 0 the batch is returned unchanged.
This module knows nothing about models, data sets or training loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, magnitude: float, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """n (× shape) draws from U(-magnitude, magnitude)."""
    return (torch.rand(n, *shape, generator=generator) * 2 - 1) * magnitude


def affine_theta(n: int, rotation: float = 0.0, shift: float = 0.0, zoom: float = 0.0, size: int = 28,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """N×2×3 random affine matrices for `F.affine_grid` (output -> input coordinates).

    rotation: max degrees either way; shift: max pixels either way (each axis);
    zoom: max relative scale change either way (0.1 = 90%..110%).
    """
    angle = _uniform(n, rotation * math.pi / 180, generator)
    scale = 1 + _uniform(n, zoom, generator)
    t = _uniform(n, shift * 2 / size, generator, 2)  # pixels -> normalized coordinates ([-1, 1] spans size px)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def elastic_offsets(n: int, size: int, alpha: float, sigma: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """N×H×W×2 smooth random displacements (Simard et al. 2003), in normalized coordinates.

    alpha: displacement scale in pixels; sigma: smoothness (Gaussian std in pixels).
    """
    noise = torch.rand(n, 2, size, size, generator=generator) * 2 - 1
    k = _gaussian_kernel(sigma)
    pad = len(k) // 2
    kh, kw = k.view(1, 1, 1, -1).repeat(2, 1, 1, 1), k.view(1, 1, -1, 1).repeat(2, 1, 1, 1)
    smooth = F.conv2d(F.conv2d(noise, kh, padding=(0, pad), groups=2), kw, padding=(pad, 0), groups=2)
    smooth = smooth / smooth.flatten(1).abs().amax(1).clamp_min(1e-8).view(n, 1, 1, 1)  # peak ±1 per image
    return (smooth * alpha * 2 / size).permute(0, 2, 3, 1)


def stroke_width(x: torch.Tensor, magnitude: float, generator: torch.Generator | None = None,
                 thin: float = -1.0) -> torch.Tensor:
    """Thicken or thin the strokes of a batch (ink > 0 on a 0 background), per image at random.

    Each image gets t from U(-thin, magnitude) (thin < 0: U(-magnitude, magnitude)), both at
    most 1, the two halves drawn equally often: t > 0 blends towards a 3×3 grey dilation
    (a pen about 2 px wider at t = 1), t < 0 towards a 3×3 grey erosion.
    """
    up = min(magnitude, 1.0)
    down = up if thin < 0 else min(thin, 1.0)
    u = _uniform(x.shape[0], 1.0, generator).view(-1, 1, 1, 1)
    t = torch.where(u < 0, u * down, u * up)
    grown = F.max_pool2d(x, 3, 1, 1)
    shrunk = -F.max_pool2d(-x, 3, 1, 1)
    return x + t.clamp_min(0) * (grown - x) + (-t).clamp_min(0) * (shrunk - x)


@dataclass
class Augment:
    """Random affine (+ optional elastic) augmentation of a normalized batch; call it on N×1×H×W."""

    rotation: float = 0.0      # max degrees either way
    shift: float = 0.0         # max pixels either way
    zoom: float = 0.0          # max relative zoom either way
    elastic: float = 0.0       # elastic displacement scale in pixels (0 = off)
    elastic_sigma: float = 4.0  # elastic smoothness in pixels
    stroke: float = 0.0        # max stroke-width change either way (0..1, see stroke_width; 0 = off)
    thin: float = -1.0         # max thinning instead, 0..1 (-1 = stroke)
    background: float = 0.0    # value of a blank pixel (after normalization)

    @property
    def active(self) -> bool:
        return any((self.rotation, self.shift, self.zoom, self.elastic, self.stroke))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.active:
            return x
        if self.stroke:
            x = stroke_width(x - self.background, self.stroke, generator, self.thin) + self.background
        if not any((self.rotation, self.shift, self.zoom, self.elastic)):
            return x
        n, _, h, w = x.shape
        theta = affine_theta(n, self.rotation, self.shift, self.zoom, h, generator)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        if self.elastic:
            grid = grid + elastic_offsets(n, h, self.elastic, self.elastic_sigma, generator)
        out = F.grid_sample(x - self.background, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return out + self.background if self.background else out


def touching_pairs(x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                   background: float = 0.0) -> torch.Tensor:
    """k images of two of the batch's digits side by side, touching or overlapping, framed like one digit.

    The second digit (moved up or down by up to 2 px) slides in from the right until
    the two inks touch (8-connected), then 0-3 px further, so that it may overlap the
    first one as far as their shapes allow (a 1 under the roof of a 7); the pair is then
    scaled into MNIST's 20-px box (aspect kept) and centred on its box, as OCR crops of
    two merged digits look. These are the examples of the "not one digit" class
    (`TrainConfig.reject`).
    """
    n, _, h, w = x.shape
    ink = (x - background).clamp_min(0)
    a = ink[torch.randint(n, (k,), generator=generator)]
    b = ink[torch.randint(n, (k,), generator=generator)]
    dy = torch.randint(-2, 3, (k,), generator=generator)
    for d in dy.unique().tolist():
        b[dy == d] = torch.roll(b[dy == d], d, dims=2)
    mask_a, mask_b = (a > 0.2).squeeze(1), (b > 0.2).squeeze(1)  # k×h×w
    grown_a = F.max_pool2d(mask_a.unsqueeze(1).float(), 3, 1, 1).squeeze(1) > 0
    touch = torch.stack([(grown_a[..., o:] & mask_b[..., :w - o]).flatten(1).any(1) for o in range(w)], 1)
    o_touch = (w - 1 - touch.flip(1).float().argmax(1)).where(touch.any(1), torch.full((k,), w))  # rightmost
    left_a, left_b = mask_a.any(1).float().argmax(1), mask_b.any(1).float().argmax(1)
    push = torch.randint(0, 4, (k,), generator=generator)
    offset = torch.maximum(o_touch - push, left_a - left_b + 2).clamp(1, w)  # b's ink starts right of a's
    canvas = torch.zeros(k, 1, h, 2 * w)
    canvas[..., :w] = a
    for o in offset.unique().tolist():
        m = offset == o
        canvas[m, :, :, o:o + w] = torch.maximum(canvas[m, :, :, o:o + w], b[m])
    return _frame(canvas, h, w) + background


def _frame(canvas: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Ink on a k×1×h×W canvas scaled into MNIST's 20-px box (aspect kept), centred in h×w."""
    k, W = canvas.shape[0], canvas.shape[-1]
    if k == 0:
        return canvas.new_zeros(0, 1, h, w)
    rows, cols = (canvas > 0.2).any(3).squeeze(1), (canvas > 0.2).any(2).squeeze(1)
    y0, y1 = rows.float().argmax(1), h - rows.flip(1).float().argmax(1)
    x0, x1 = cols.float().argmax(1), W - cols.flip(1).float().argmax(1)
    scale = 20.0 / torch.maximum(x1 - x0, y1 - y0).clamp_min(1).float()  # output px per canvas px
    cx, cy = (x0 + x1).float() / 2, (y0 + y1).float() / 2
    zero = torch.zeros(k)
    theta = torch.stack([torch.stack([w / (scale * W), zero, 2 * cx / W - 1], 1),
                         torch.stack([zero, h / (scale * h), 2 * cy / h - 1], 1)], 1)
    grid = F.affine_grid(theta, [k, 1, h, w], align_corners=False)
    smooth = F.avg_pool2d(canvas, 3, 1, 1, count_include_pad=False)  # shrinking a lot: low-pass first
    canvas = torch.where((scale < 0.75).view(k, 1, 1, 1), smooth, canvas)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
