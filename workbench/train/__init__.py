"""Training: TrainConfig, the runner process, and Run handles on run folders."""

from .config import ConfigError, TrainConfig, for_hardware
from .jobs import JobFormatError
from .launch import TrainingDataError
from .run import Run, RunStatus

__all__ = [
    "ConfigError",
    "JobFormatError",
    "Run",
    "RunStatus",
    "TrainConfig",
    "TrainingDataError",
    "for_hardware",
]
