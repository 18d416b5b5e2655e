"""Classification / re-ID training pieces: generated data, data modules, P x K sampler, losses, re-ID metrics,
checkpoint round trip through a real Lightning Trainer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch

from detection.classification import (
    ClassificationModule,
    ImageFolderDataModule,
    PKBatchSampler,
    ReIDDataModule,
    ReIDModule,
    build_model,
    generate_classification_set,
    generate_reid_set,
    reid_metrics,
)
from detection.classification.module import batch_hard_triplet_loss

torch.set_num_threads(1)

TINY_DCAL = {
    "name": "dcal_vit_tiny",
    "img_size": 32,
    "patch_size": 8,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
}
TINY_BIFORMER = {
    "name": "biformer",
    "depth": [1, 1, 1, 1],
    "embed_dim": [32, 32, 64, 64],
    "topks": [1, 2, 4, -2],
    "n_win": 2,
}


def test_generated_classification_set_layout(tmp_path: Path) -> None:
    classes = generate_classification_set(
        tmp_path, num_classes=8, train_per_class=2, val_per_class=1, size=32
    )
    assert len(classes) == len(set(classes)) == 8
    dm = ImageFolderDataModule(str(tmp_path), num_classes=8, image_size=32, batch_size=4, num_workers=0)
    dm.setup("fit")
    assert dm.classes == sorted(classes) and len(dm.train_set) == 16 and len(dm.val_set) == 8
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32 and labels.max() < 8
    with pytest.raises(ValueError, match="num_classes=5"):
        ImageFolderDataModule(str(tmp_path), num_classes=5, num_workers=0).setup("fit")
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolderDataModule(str(tmp_path / "nope"), num_classes=8, num_workers=0).setup("fit")


def test_generated_reid_set_and_pk_batches(tmp_path: Path) -> None:
    generate_reid_set(tmp_path, train_ids=6, test_ids=3, cameras=2, per_camera=3, size=32)
    dm = ReIDDataModule(str(tmp_path), num_ids=6, image_size=32, p=3, k=2, batch_size=8, num_workers=0)
    dm.setup("fit")
    q = [i for i in range(len(dm.eval_set)) if dm.eval_set.is_query[i]]
    assert len(q) == 3 * 2 and len(dm.eval_set) == 3 * 2 * 3  # one query per identity and camera
    assert set(dm.eval_set.cams) == {0, 1}
    for batch in PKBatchSampler(dm.train_set.labels, p=3, k=2, seed=0):  # (index, item seed) pairs
        counts = Counter(dm.train_set.labels[i] for i, _ in batch)
        assert len(counts) == 3 and set(counts.values()) == {2}
    with pytest.raises(ValueError, match="identities"):
        PKBatchSampler([0, 0, 1, 1], p=3, k=2)


def test_reid_metrics_follow_the_standard_protocol() -> None:
    # Query: id 1 camera 0. Gallery sorted by distance: [id1 cam0 (ignored: same id and camera), id2, id1, id3].
    query = torch.zeros(1, 1)
    gallery = torch.tensor([[0.1], [0.2], [0.3], [0.4]])
    m = reid_metrics(
        query,
        torch.tensor([1]),
        torch.tensor([0]),
        gallery,
        torch.tensor([1, 2, 1, 3]),
        torch.tensor([0, 1, 1, 1]),
    )
    assert m == {"mAP": 0.5, "rank1": 0.0}
    perfect = reid_metrics(
        query,
        torch.tensor([1]),
        torch.tensor([0]),
        gallery,
        torch.tensor([1, 1, 2, 3]),
        torch.tensor([1, 1, 1, 1]),
    )
    assert perfect == {"mAP": 1.0, "rank1": 1.0}


def test_batch_hard_triplet_loss() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    separated = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    assert batch_hard_triplet_loss(separated, labels, margin=0.3).item() == 0.0
    mixed = torch.tensor([[0.0], [5.0], [0.1], [5.1]])
    assert batch_hard_triplet_loss(mixed, labels, margin=0.3).item() == pytest.approx(
        5.0 - 0.1 + 0.3, abs=1e-4
    )
    with pytest.raises(ValueError, match="P x K"):
        batch_hard_triplet_loss(separated, torch.tensor([0, 1, 2, 3]))


def test_build_model_names() -> None:
    kwargs = {k: v for k, v in TINY_BIFORMER.items() if k != "name"}
    assert build_model("biformer", 3, **kwargs).eval()(torch.rand(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(
        ValueError, match="unknown classifier 'resnet50'; expected one of: biformer, biformer_base"
    ):
        build_model("resnet50", 3)
    with pytest.raises(ValueError, match="DCAL"):
        ReIDModule(model={"name": "biformer_tiny"}, num_ids=3)


@pytest.mark.parametrize("model", [TINY_BIFORMER, TINY_DCAL], ids=["biformer", "dcal"])
def test_classification_checkpoint_round_trip(tmp_path: Path, model: dict) -> None:
    generate_classification_set(tmp_path / "data", num_classes=2, train_per_class=8, val_per_class=4, size=32)
    dm = ImageFolderDataModule(
        str(tmp_path / "data"), num_classes=2, image_size=32, batch_size=4, num_workers=0
    )
    module = ClassificationModule(model=dict(model), num_classes=2)
    trainer = L.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, datamodule=dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = ClassificationModule.load_from_checkpoint(path, weights_only=True).eval()
    x = torch.rand(2, 3, 32, 32)
    module.eval()
    torch.testing.assert_close(loaded(x), module(x))
    assert loaded.hparams.model == model  # plain containers in the checkpoint


def test_reid_module_validation_reports_metrics(tmp_path: Path) -> None:
    generate_reid_set(tmp_path, train_ids=4, test_ids=3, cameras=2, per_camera=2, size=32)
    dm = ReIDDataModule(str(tmp_path), num_ids=4, image_size=32, p=2, k=2, batch_size=8, num_workers=0)
    module = ReIDModule(model=dict(TINY_DCAL), num_ids=4)
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, datamodule=dm)
    metrics = trainer.callback_metrics
    assert 0.0 < float(metrics["val/mAP"]) <= 1.0 and 0.0 <= float(metrics["val/rank1"]) <= 1.0
    assert module(torch.rand(2, 3, 32, 32)).shape == (2, 64)  # SA + GLCA CLS embeddings
