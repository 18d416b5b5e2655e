"""Plain-DETR with BoxRPB (Lin et al., ICCV 2023): single-scale, encoder-free DETR with box relative position bias."""

from detection.plain_detr.backbones import BiFormerStride16, ConvNet, PlainViT  # registers the backbones
from detection.plain_detr.boxrpb import BoxRPB, GlobalCrossAttention, box_rpb_offsets
from detection.plain_detr.config import PlainDETRConfig, tiny_config
from detection.plain_detr.detector import Detector
from detection.plain_detr.losses import SetCriterion, sigmoid_focal_loss
from detection.plain_detr.matcher import HungarianMatcher
from detection.plain_detr.model import PlainDETR
from detection.plain_detr.postprocess import InferenceModel, topk_detections

__all__ = [
    "BiFormerStride16",
    "BoxRPB",
    "ConvNet",
    "Detector",
    "GlobalCrossAttention",
    "HungarianMatcher",
    "InferenceModel",
    "PlainDETR",
    "PlainDETRConfig",
    "PlainViT",
    "SetCriterion",
    "box_rpb_offsets",
    "sigmoid_focal_loss",
    "tiny_config",
    "topk_detections",
]
