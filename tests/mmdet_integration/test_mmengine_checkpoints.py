"""mmengine checkpoints load with ``weights_only=True`` once ``allow_mmengine_checkpoints`` ran (the mmdet plugin
runs it on import), and the allow-list does not open torch's safe loader to anything else.

Needs only mmengine (part of the mmdet extra): a real ``Runner`` trains a small model, saves checkpoints with
its message hub, and a second Runner loads one through ``load_from`` (mmengine's own ``torch.load``).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

pytest.importorskip("mmengine.runner", reason="mmengine is not installed (the mmdet extra: make mmdet)")

from mmengine.evaluator import BaseMetric
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner

from detection.mmengine_checkpoints import allow_mmengine_checkpoints


class _Regressor(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, mode: str = "tensor") -> object:
        out = self.linear(x)
        return {"loss": ((out - y) ** 2).mean()} if mode == "loss" else [out]


class _Points(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        return {"x": torch.randn(2, generator=g), "y": torch.randn(1, generator=g)}


class _MeanError(BaseMetric):
    def process(self, data_batch: object, data_samples: object) -> None:
        self.results.append(0.5)

    def compute_metrics(self, results: list) -> dict[str, float]:
        return {"error": sum(results) / len(results)}


def _runner(work_dir: Path, **overrides: object) -> Runner:
    loader = {"dataset": _Points(), "batch_size": 4, "collate_fn": {"type": "default_collate"}}
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader={**loader, "sampler": {"type": "DefaultSampler", "shuffle": True}},
        val_dataloader={**loader, "sampler": {"type": "DefaultSampler", "shuffle": False}},
        val_evaluator={"type": _MeanError},
        val_cfg={},
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.01}},
        train_cfg={"by_epoch": True, "max_epochs": 2, "val_interval": 1},
        default_hooks={"checkpoint": {"type": "CheckpointHook", "interval": 1}},
        randomness={"seed": 0},
        **overrides,
    )


def test_a_runner_checkpoint_loads_with_weights_only_and_through_load_from(tmp_path: Path) -> None:
    trained = _runner(tmp_path / "train")
    trained.train()
    path = tmp_path / "train" / "epoch_2.pth"
    allow_mmengine_checkpoints()
    checkpoint = torch.load(path, weights_only=True)
    buffers = checkpoint["message_hub"]["log_scalars"]
    assert isinstance(buffers["train/loss"], HistoryBuffer) and len(buffers["train/loss"].data[0]) > 0
    assert isinstance(buffers["val/error"].mean(), float)

    reloaded = _runner(tmp_path / "test", load_from=str(path))
    reloaded.load_or_resume()
    for name, value in trained.model.state_dict().items():
        assert torch.equal(reloaded.model.state_dict()[name], value), name


class _Walk:
    """Pickles as getattr(HistoryBuffer, "__init__"): what a file could do with the builtin getattr allowed."""

    def __reduce__(self) -> tuple:
        return getattr, (HistoryBuffer, "__init__")


def test_getattr_in_a_checkpoint_reaches_only_the_statistics_methods() -> None:
    allow_mmengine_checkpoints()
    buffer = io.BytesIO()
    torch.save({"x": _Walk()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=r"refused getattr\(.*'__init__'\)"):
        torch.load(buffer, weights_only=True)
