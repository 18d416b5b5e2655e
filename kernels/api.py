"""The public ops: validate, pick a backend, call it. Shapes follow docs in ``kernels/__init__.py``.

Nothing here reads tensor values back to the host (no device sync) unless debug checks are on (``checks``).
"""

from __future__ import annotations

import torch

import kernels.checks as checks
import kernels.dispatch as dispatch
from kernels.calls import BoxRPBCall, NeighborhoodCall, RoutingCall


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def boxrpb_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias_x: torch.Tensor,
    bias_y: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Plain-DETR BoxRPB cross-attention without materialising the ``Q x H*W`` bias.

    ``q [B,h,Q,d]``, ``k, v [B,h,H*W,d]`` (row-major pixels), ``bias_x [B,h,Q,W]``, ``bias_y [B,h,Q,H]``,
    ``key_padding_mask [B,H*W]`` bool (True = padding; padded logits get -100 as in Plain-DETR).
    Logit of query q at pixel (y, x): ``q·k * scale + bias_x[q, x] + bias_y[q, y]``. Returns ``[B,h,Q,d]``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        checks.require_rank(name, t, 4, "[B, heads, tokens, head_dim]")
    checks.require_rank("bias_x", bias_x, 4, "[B, heads, Q, W]")
    checks.require_rank("bias_y", bias_y, 4, "[B, heads, Q, H]")
    checks.require_floating(("q", q), ("k", k), ("v", v), ("bias_x", bias_x), ("bias_y", bias_y))
    b, h, n_q, d = q.shape
    height, width = bias_y.shape[-1], bias_x.shape[-1]
    checks.require_shape("bias_x", bias_x, (b, h, n_q, width), "[B, heads, Q, W]")
    checks.require_shape("bias_y", bias_y, (b, h, n_q, height), "[B, heads, Q, H]")
    checks.require_shape(
        "k", k, (b, h, height * width, d), "[B, heads, H*W, head_dim] (H, W from bias_y, bias_x)"
    )
    checks.require_shape(
        "v", v, (b, h, height * width, d), "[B, heads, H*W, head_dim] (H, W from bias_y, bias_x)"
    )
    if key_padding_mask is not None:
        checks.require_shape("key_padding_mask", key_padding_mask, (b, height * width), "[B, H*W]")
        if key_padding_mask.dtype != torch.bool:
            raise ValueError(f"key_padding_mask must be bool (True = padding), got {key_padding_mask.dtype}")
        if key_padding_mask.device != q.device:
            raise ValueError(f"key_padding_mask is on {key_padding_mask.device} but q is on {q.device}")
    scale = checks.default_scale(d, scale)
    chosen = dispatch.resolve(backend, q.device, _needs_grad(q, k, v, bias_x, bias_y))
    impl = dispatch.implementation("boxrpb", chosen)
    return impl.boxrpb_attention(BoxRPBCall(q, k, v, bias_x, bias_y, key_padding_mask, scale))


def routed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    topk_index: torch.Tensor,
    region_size: int,
    *,
    scale: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """BiFormer bi-level routing attention without the top-k-fold K/V copy.

    ``q, k, v [B,h,R*T,d]`` in region-major token order (R regions of ``region_size`` T tokens each);
    ``topk_index [B,R,k]`` int64 or int32, the key regions each query region attends to (shared across heads);
    its values are checked to lie in ``[0, R)`` only in debug mode (``kernels.set_debug_checks``: the check
    syncs the device). Returns ``[B,h,R*T,d]``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        checks.require_rank(name, t, 4, "[B, heads, regions*region_size, head_dim]")
    checks.require_floating(("q", q), ("k", k), ("v", v))
    checks.require_shape("k", k, tuple(q.shape), "like q")
    checks.require_shape("v", v, tuple(q.shape), "like q")
    b, _, n, d = q.shape
    if isinstance(region_size, bool) or not isinstance(region_size, int) or region_size < 1:
        raise ValueError(f"region_size must be a positive int (tokens per region), got {region_size!r}")
    if n % region_size:
        raise ValueError(f"token count {n} is not a multiple of region_size {region_size}")
    regions = n // region_size
    checks.require_rank("topk_index", topk_index, 3, "[B, regions, topk]")
    if topk_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"topk_index must be an int64 or int32 tensor, got {topk_index.dtype}")
    if topk_index.shape[:2] != (b, regions) or not 1 <= topk_index.shape[2] <= regions:
        raise ValueError(
            f"topk_index must have shape [B, regions, topk] = [{b}, {regions}, 1..{regions}], "
            f"got {tuple(topk_index.shape)}"
        )
    if topk_index.device != q.device:
        raise ValueError(f"topk_index is on {topk_index.device} but q is on {q.device}")
    if checks.debug_checks():
        checks.require_index_range("topk_index", topk_index, regions)
    scale = checks.default_scale(d, scale)
    chosen = dispatch.resolve(backend, q.device, _needs_grad(q, k, v))
    impl = dispatch.implementation("routing", chosen)
    return impl.routed_attention(RoutingCall(q, k, v, topk_index, region_size, scale))


def neighborhood_attention_2d(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel_size: int | tuple[int, int],
    dilation: int | tuple[int, int] = 1,
    *,
    scale: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """2-D neighborhood attention (NATTEN's ``na2d`` semantics: odd kernel, dilation, clamped borders).

    ``q, k, v [B,h,H,W,d]``; each pixel attends to the ``kernel_size`` window of its dilation class around it,
    shifted to stay inside the image. Needs ``H >= kernel_h * dilation_h`` and ``W >= kernel_w * dilation_w``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        checks.require_rank(name, t, 5, "[B, heads, H, W, head_dim]")
    checks.require_floating(("q", q), ("k", k), ("v", v))
    checks.require_shape("k", k, tuple(q.shape), "like q")
    checks.require_shape("v", v, tuple(q.shape), "like q")
    kernel = checks.pair("kernel_size", kernel_size)
    dil = checks.pair("dilation", dilation)
    if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a window centred on each pixel), got {kernel}")
    height, width = q.shape[2], q.shape[3]
    if height < kernel[0] * dil[0] or width < kernel[1] * dil[1]:
        raise ValueError(
            f"feature map {height}x{width} is smaller than kernel_size*dilation = "
            f"{kernel[0] * dil[0]}x{kernel[1] * dil[1]}; pad the input or use a smaller kernel/dilation"
        )
    scale = checks.default_scale(q.shape[-1], scale)
    chosen = dispatch.resolve(backend, q.device, _needs_grad(q, k, v))
    impl = dispatch.implementation("neighborhood", chosen)
    return impl.neighborhood_attention_2d(NeighborhoodCall(q, k, v, kernel, dil, scale))
