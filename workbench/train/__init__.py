"""Training: TrainConfig, the runner process, and Run handles on run folders."""

from .config import ConfigError, TrainConfig, for_hardware
from .launch import TrainingDataError
from .run import Run, RunStatus

__all__ = ["ConfigError", "Run", "RunStatus", "TrainConfig", "TrainingDataError", "for_hardware"]
