"""Models' answers: one model host (base + adapters by name), generation, chat, comparison,
evaluation with scorers, per-token losses, the comparison report, and the checks an adapter passes
before it loads.
"""

from .compare import Comparison, ComparisonStopped
from .evaluate import Evaluation
from .generate import GenerationSettings
from .token_losses import TokenLosses

__all__ = ["Comparison", "ComparisonStopped", "Evaluation", "GenerationSettings", "TokenLosses"]
