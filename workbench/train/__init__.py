"""Training: TrainConfig, plan (every open setting decided), the runner process, Run handles."""

from .config import ConfigError, TrainConfig
from .folder import RunStatus
from .jobs import JobFormatError
from .launch import TrainingDataError
from .plan import for_hardware
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
