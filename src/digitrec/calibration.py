"""Probability calibration: temperature scaling and the expected calibration error (ECE).

One scalar T divides the logits so that softmax(logits / T) matches observed
accuracy on held-out data (Guo et al., 2017). T changes no prediction, only
how confident each is, which is what abstaining ("uncertain") relies on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimizing the NLL of softmax(logits / T) on (logits, labels)."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits = logits.detach().double()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp().double(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the bin-weighted gap between confidence and accuracy, equal-width confidence bins."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(ece)


def calibrate(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Fit T on (logits, labels); return it with the ECE before and after. A T that does not lower
    the ECE there (it minimizes the NLL, which on a few dozen images can disagree) is not kept:
    the temperature stays 1 and `refused` records the T fitted."""
    t = fit_temperature(logits, labels)
    y = labels.numpy()
    before = expected_calibration_error(F.softmax(logits, 1).numpy(), y)
    after = expected_calibration_error(F.softmax(logits / t, 1).numpy(), y)
    if after > before:
        return {"temperature": 1.0, "ece_before": before, "ece_after": before, "fitted_on": len(y), "refused": t}
    return {"temperature": t, "ece_before": before, "ece_after": after, "fitted_on": len(y)}
