"""detection: BiFormer, DCAL and Plain-DETR models with their Lightning modules (uses ``kernels``)."""

from detection.biformer import biformer_base, biformer_small, biformer_tiny, load_official_checkpoint
from detection.dcal import DCAL, dcal_vit
from detection.plain_detr import Detector, PlainDETR, PlainDETRConfig
from detection.vit import vit_base_patch16, vit_small_patch16, vit_tiny_patch16

__all__ = [
    "DCAL",
    "Detector",
    "PlainDETR",
    "PlainDETRConfig",
    "biformer_base",
    "biformer_small",
    "biformer_tiny",
    "dcal_vit",
    "load_official_checkpoint",
    "vit_base_patch16",
    "vit_small_patch16",
    "vit_tiny_patch16",
]
