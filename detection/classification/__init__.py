"""Fine-grained classification and re-ID training (Lightning modules, image-folder data, a generated set)."""

from detection.classification.data import ImageFolderDataModule, PKBatchSampler, ReIDDataModule
from detection.classification.module import ClassificationModule, ReIDModule, build_model, reid_metrics
from detection.classification.synthetic_data import generate_classification_set, generate_reid_set

__all__ = [
    "ClassificationModule",
    "ImageFolderDataModule",
    "PKBatchSampler",
    "ReIDDataModule",
    "ReIDModule",
    "build_model",
    "generate_classification_set",
    "generate_reid_set",
    "reid_metrics",
]
