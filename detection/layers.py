"""Small pieces every transformer backbone of the package shares: stochastic depth and the ViT-family weight
initialisation."""

from __future__ import annotations

from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth per sample (Huang et al. 2016); identity at eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def init_transformer_weights(m: nn.Module) -> None:
    """For ``module.apply``: trunc-normal(0.02) linear weights, zero biases, unit LayerNorms (ViT, DeiT,
    BiFormer and Plain-DETR's decoder all start this way)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
