"""``vid2robot-train task=detection`` end to end on the synthetic COCO set: Hydra composition, a real Trainer,
COCOeval validation, checkpoints, resume, and a trained model that clearly beats an untrained one."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig

from detection.plain_detr import Detector
from vid2robot.cli.train import register_configs, run

EPOCHS = 40


def compose_detection(root: Path, *overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        return compose(
            "train",
            overrides=[
                "task=detection",
                f"data.synthetic.root={root}",
                "data.synthetic.train=128",
                "data.synthetic.val=32",
                "data.synthetic.size=64",
                "data.synthetic.min_side=20",
                "data.synthetic.max_side=48",
                "data.synthetic.max_objects=1",
                "data.batch_size=16",
                "data.num_workers=0",
                "module.image_size=64",
                "module.model.num_queries_one2one=20",
                "module.model.num_queries_one2many=40",
                "module.lr=1e-3",
                "module.warmup_steps=10",
                "trainer.accelerator=cpu",
                "trainer.devices=1",
                "trainer.enable_progress_bar=false",
                "trainer.log_every_n_steps=4",
                f"trainer.check_val_every_n_epoch={EPOCHS}",
                f"trainer.max_epochs={EPOCHS}",
                *overrides,
            ],
        )


def untrained_ap(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(0)
    module = instantiate(cfg.module, _convert_="all")
    data = instantiate(cfg.data, _convert_="all")
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.validate(module, datamodule=data, verbose=False)
    return module.last_metrics


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cli_training_beats_untrained_and_resumes(tmp_path: Path) -> None:
    cfg = compose_detection(tmp_path / "shapes")
    run_dir = tmp_path / "run"
    metrics = run(cfg, run_dir)
    before = untrained_ap(cfg)
    print(f"untrained {before}\ntrained {metrics}")
    assert metrics["val/AP50"] > before["AP50"] + 5.0 and metrics["val/AP"] > before["AP"] + 1.0

    saved = sorted((run_dir / "csv" / "coco_metrics").glob("step_*.json"))
    assert saved and json.loads(saved[-1].read_text())["AP"] == pytest.approx(metrics["val/AP"], abs=1e-3)
    last = run_dir / "checkpoints" / "last.ckpt"
    hp = torch.load(last, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hp["model"]["num_queries_one2one"] == 20

    steps_before = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    run(compose_detection(tmp_path / "shapes", "ckpt_path=last", f"trainer.max_epochs={EPOCHS + 1}"), run_dir)
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    # Exactly one more epoch of steps. The resumed epoch has no validation, so Lightning writes last.ckpt when
    # training ends, after its epoch counter has moved on: the file counts EPOCHS + 1 finished epochs.
    assert ckpt["global_step"] == steps_before + 128 // 16
    assert ckpt["epoch"] == EPOCHS + 1

    detector = Detector.from_checkpoint(last, score_threshold=0.3)
    assert detector.input_size == 64
    boxes, scores, labels = detector.predict([torch.zeros(64, 64, 3, dtype=torch.uint8).numpy()])
    assert boxes[0].shape[1] == 4 and len(scores[0]) == len(labels[0])
