"""``vid2robot-train``: one Lightning + Hydra training CLI for every task of the package.

The ``task`` config group (``vid2robot/conf/task/<name>.yaml``) provides an instantiable ``module``
(LightningModule) and ``data`` (LightningDataModule); this file adds what every task shares: seeding, the
Trainer, checkpoints (``last.ckpt`` for exact resume), CSV + TensorBoard logs and the progress bar.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from detection.safe_files import atomic_write_text
from detection.training.random_state import RandomStateCheckpoint
from vid2robot.cli.config_checks import check_policy_schema, check_trainer_config, check_value_types
from vid2robot.cli.errors import report_user_errors
from vid2robot.conf.schemas import register_configs
from vid2robot.training.checkpoint_io import AtomicCheckpointIO, checkpoint_step, readable_resume_checkpoint
from vid2robot.training.csv_logger import ContinuingCSVLogger

log = logging.getLogger(__name__)

LOGGERS = ("csv", "tensorboard")


def _loggers(names: list[str], run_dir: Path, resume_step: int | None) -> list[Logger]:
    unknown = sorted(set(names) - set(LOGGERS))
    if unknown:
        raise ValueError(f"unknown logger(s) {unknown}; choose from {sorted(LOGGERS)}")
    loggers: list[Logger] = []
    for name in names:
        if name == "csv":  # a resumed run continues the run's metrics.csv
            loggers.append(
                ContinuingCSVLogger(save_dir=str(run_dir), name=name, version="", resume_step=resume_step)
            )
        else:
            loggers.append(TensorBoardLogger(save_dir=str(run_dir), name=name, version=""))
    return loggers


def _callbacks(cfg: DictConfig, run_dir: Path) -> list[Callback]:
    c = cfg.checkpoint
    schedule = {
        "dirpath": run_dir / "checkpoints",
        "enable_version_counter": False,  # keep writing last.ckpt on resume (ckpt_path=last)
        "every_n_train_steps": c.every_n_train_steps,
        "every_n_epochs": None if c.every_n_train_steps else c.every_n_epochs,
    }
    named = ModelCheckpoint(
        filename="{epoch:03d}-{step:06d}",
        save_last=not c.monitor,
        save_top_k=c.save_top_k if c.monitor else 1,
        monitor=c.monitor,
        mode=c.mode,
        **schedule,
    )
    callbacks: list[Callback] = [named, LearningRateMonitor(logging_interval="step"), RandomStateCheckpoint()]
    if c.monitor:
        # With a monitor, Lightning refreshes last.ckpt only when a new best is saved; a second callback
        # keeps last.ckpt the latest state, which exact resume needs.
        callbacks.append(ModelCheckpoint(save_last=True, save_top_k=0, **schedule))
    return callbacks


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``None`` starts fresh; ``"last"`` resumes ``<run_dir>/checkpoints/last.ckpt``; else a file path.

    A truncated or corrupt checkpoint is named in a warning and the newest whole one beside it used instead.
    """
    if ckpt_path is None:
        return None
    path = run_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = (
            " (ckpt_path=last looks in <hydra.run.dir>/checkpoints; pass the run's dir)"
            if ckpt_path == "last"
            else ""
        )
        raise FileNotFoundError(f"checkpoint to resume from not found: {path}{hint}")
    return str(readable_resume_checkpoint(path))


def run(cfg: DictConfig, run_dir: Path, extra_callbacks: Sequence[Callback] = ()) -> dict[str, float]:
    """Fit (and optionally test) the configured task; returns the final logged metrics."""
    for key in ("module", "data"):
        if key not in cfg or cfg[key] is None:
            raise ValueError(f"the task config must define `{key}` with a _target_ (got task without it)")
    check_trainer_config(cfg.trainer)
    check_value_types(cfg)
    check_policy_schema(cfg.module)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, run_dir)
    loggers = _loggers(list(cfg.loggers), run_dir, checkpoint_step(Path(ckpt_path)) if ckpt_path else None)
    L.seed_everything(cfg.seed, workers=True)
    module = instantiate(cfg.module, _convert_="all")
    data = instantiate(cfg.data, _convert_="all")
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        logger=loggers,
        callbacks=[*_callbacks(cfg, run_dir), *extra_callbacks],
        plugins=[AtomicCheckpointIO()],
    )
    # Everything is built, so the settings are valid: record the values this run uses.
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    if cfg.test_after_fit:
        trainer.test(module, datamodule=data)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    log.info("run dir: %s", run_dir)
    for name, value in sorted(metrics.items()):
        log.info("%s = %.4f", name, value)
    return metrics


register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    with report_user_errors("vid2robot-train"):
        return run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
