"""Training: TrainConfig, the runner process, and Run handles on run folders."""

from .config import ConfigError, TrainConfig, for_hardware
from .folder import RunStatus
from .jobs import JobFormatError
from .launch import TrainingDataError
from .run import Run

__all__ = [
    "ConfigError",
    "JobFormatError",
    "Run",
    "RunStatus",
    "TrainConfig",
    "TrainingDataError",
    "for_hardware",
]
