"""Training: TrainConfig, plan (every open setting decided), the runner process, Run handles;
SFT, DPO, reward models and GRPO with reward functions."""

from .config import ConfigError, TrainConfig
from .folder import RunProgress, RunStatus
from .jobs import JobFormatError
from .launch import TrainingDataError
from .plan import for_hardware
from .reward_model import RewardModelError
from .rewards import RewardFunctionError
from .run import Run

__all__ = [
    "ConfigError",
    "JobFormatError",
    "RewardFunctionError",
    "RewardModelError",
    "Run",
    "RunProgress",
    "RunStatus",
    "TrainConfig",
    "TrainingDataError",
    "for_hardware",
]
