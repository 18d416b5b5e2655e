"""Every training task of ``vid2robot-train`` resumes exactly: interrupted mid-epoch by a crash and resumed
with ``ckpt_path=last``, it ends with the weights of the uninterrupted run, bit for bit, with drop-path on (a
global-generator draw) and augmentations drawing from the global generators. The policy tasks have the same
check in ``test_train_cli.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_and_resume import assert_resume_is_exact
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from detection.classification import generate_classification_set, generate_reid_set
from vid2robot.cli.train import register_configs

RUN = [
    "data.num_workers=0", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1", "trainer.max_epochs=100", "trainer.limit_val_batches=1", "loggers=[csv]",
]  # fmt: skip
SMALL_DCAL = [
    "module.model.name=dcal_vit_tiny", "+module.model.embed_dim=32", "+module.model.depth=2",
    "+module.model.num_heads=2", "module.model.patch_size=8", "module.model.stem=conv",
    "module.model.drop_path_rate=0.1", "module.warmup_steps=2", "data.image_size=32",
]  # fmt: skip
TASKS = {
    # 4 classes x 8 images, batch 8: 4 steps an epoch, so a crash after step 3 is mid-epoch
    "biformer_cls": [
        "data.num_classes=4", "data.image_size=32", "data.batch_size=8", "module.model.name=biformer",
        "+module.model.depth=[1,1,1,1]", "+module.model.embed_dim=[32,64,64,64]", "+module.model.topks=[1,2,4,-2]",
        "module.model.n_win=2", "module.model.drop_path_rate=0.1", "module.warmup_steps=2",
    ],
    "dcal_cls": ["data.num_classes=4", "data.batch_size=8", *SMALL_DCAL],
    # 8 identities, P x K = 2 x 4: 4 batches an epoch
    "dcal_reid": ["data.num_ids=8", "data.p=2", "data.k=4", *SMALL_DCAL],
    # 32 synthetic images, batch 8; no validation (COCOeval is not what is checked here)
    "detection": [
        "data.synthetic.train=32", "data.synthetic.val=8", "data.synthetic.size=64", "data.synthetic.min_side=20",
        "data.synthetic.max_side=48", "data.synthetic.max_objects=1", "data.batch_size=8", "module.image_size=64",
        "module.model.num_queries_one2one=10", "module.model.num_queries_one2many=20", "module.warmup_steps=2",
        "trainer.check_val_every_n_epoch=100",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("resume_data")
    generate_classification_set(root / "birds", 4, train_per_class=8, val_per_class=2, size=32)
    generate_reid_set(root / "people", train_ids=8, test_ids=2, cameras=2, per_camera=2, size=32)
    return {
        "biformer_cls": f"data.root={root / 'birds'}",
        "dcal_cls": f"data.root={root / 'birds'}",
        "dcal_reid": f"data.root={root / 'people'}",
        "detection": f"data.synthetic.root={root / 'shapes'}",
    }


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_an_interrupted_run_resumes_bit_identically(task: str, data: dict[str, str], tmp_path: Path) -> None:
    def compose_task(*overrides: str) -> DictConfig:
        register_configs()
        with initialize_config_module("vid2robot.conf", version_base="1.3"):
            return compose("train", overrides=[f"task={task}", data[task], *RUN, *TASKS[task], *overrides])

    assert_resume_is_exact(compose_task, tmp_path, max_steps=6, crash_at=3)
