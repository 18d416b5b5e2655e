"""COCO-format detection data: dataset + DETR augmentation, a synthetic set generator, COCOeval wrapper."""

from detection.coco.datamodule import CocoDataModule
from detection.coco.dataset import CocoDetection, collate
from detection.coco.evaluation import METRICS, CocoEvaluator, format_table
from detection.coco.synthetic import CLASSES as SYNTHETIC_CLASSES
from detection.coco.synthetic import generate as generate_synthetic_coco

__all__ = [
    "METRICS",
    "SYNTHETIC_CLASSES",
    "CocoDataModule",
    "CocoDetection",
    "CocoEvaluator",
    "collate",
    "format_table",
    "generate_synthetic_coco",
]
