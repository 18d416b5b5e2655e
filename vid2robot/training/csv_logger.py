"""A CSV logger whose resumed run continues the run's ``metrics.csv`` instead of emptying it."""

from __future__ import annotations

import csv
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from detection.safe_files import atomic_open


class _ContinuingWriter(ExperimentWriter):
    """Keeps the rows logged before ``resume_step`` (later ones came after the checkpoint and are logged
    again); Lightning's writer deletes the whole file when its folder is not empty."""

    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self._resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self._resume_step is None or not path.is_file():
            return super()._check_log_dir_exists()
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = [row for row in reader if row.get("step") and int(float(row["step"])) < self._resume_step]
        with atomic_open(path, "w") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = header


class ContinuingCSVLogger(CSVLogger):
    """``CSVLogger`` that, given the step a run resumes from, appends to the run's existing ``metrics.csv``."""

    def __init__(self, *args, resume_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir, resume_step=self._resume_step)
        return self._experiment
