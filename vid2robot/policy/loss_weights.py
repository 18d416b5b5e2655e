"""The terms of the Vid2Robot objective and the one check of their weights (used by configs and the loss)."""

from __future__ import annotations

from collections.abc import Mapping

LOSS_TERMS = ("ce", "tcc", "vvcl", "vtcl")  # action cross-entropy, cycle consistency, video-video, video-text
ACTION_LOSS_ONLY: dict[str, float] = {"ce": 1.0, "tcc": 0.0, "vvcl": 0.0, "vtcl": 0.0}


def check_loss_weights(weights: Mapping[str, float], owner: str = "loss") -> dict[str, float]:
    """Every term named once, each weight >= 0, a positive sum; returns the weights as a plain dict."""
    if set(weights) != set(LOSS_TERMS):
        raise ValueError(f"{owner} weights must name exactly {list(LOSS_TERMS)}, got {sorted(weights)}")
    values = {term: float(weights[term]) for term in LOSS_TERMS}
    if any(w < 0 for w in values.values()) or sum(values.values()) == 0:
        raise ValueError(f"{owner} weights must be >= 0 with a positive sum, got {values}")
    return values
