"""``vid2robot-datagen``: scripted Meta-World expert demonstrations into the episode format (Hydra app)."""

from __future__ import annotations

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from vid2robot.cli.errors import report_user_errors
from vid2robot.sim.expert_data import DatagenConfig, generate_expert_dataset

ConfigStore.instance().store(name="datagen_schema", node=DatagenConfig)


def _report(summary: dict) -> str:
    lines = [f"{'task':28s} kept attempts expert_success"]
    for task, stats in summary["tasks"].items():
        lines.append(
            f"{task:28s} {stats['kept']:4d} {stats['attempts']:8d} {stats['expert_success_rate']:14.1%}"
        )
    rate = summary["episodes"] / summary["seconds"]
    lines.append(f"{summary['episodes']} episodes in {summary['seconds']:.1f} s ({rate:.2f} episodes/s)")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="datagen")
def main(cfg: DictConfig) -> None:
    with report_user_errors("vid2robot-datagen"):
        config: DatagenConfig = OmegaConf.to_object(cfg)  # runs DatagenConfig's checks
        summary = generate_expert_dataset(config)
    print(_report(summary))
    print(f"wrote {config.out_dir}")


if __name__ == "__main__":
    main()
