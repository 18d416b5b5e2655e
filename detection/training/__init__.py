"""Training pieces every LightningModule of the package shares (the policy's too, so they live at this level):
one resume-safe AdamW schedule, loaders that resume mid-epoch, and the random state carried in checkpoints."""

from detection.training.random_state import RandomStateCheckpoint
from detection.training.resumable_loader import (
    ResumableBatchSampler,
    ResumableDataLoader,
    ResumableRandomSampler,
)
from detection.training.schedule import adamw_with_warmup, parameter_groups

__all__ = [
    "RandomStateCheckpoint",
    "ResumableBatchSampler",
    "ResumableDataLoader",
    "ResumableRandomSampler",
    "adamw_with_warmup",
    "parameter_groups",
]
