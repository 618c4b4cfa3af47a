"""Models' answers: one model host (base + adapters by name), generation, chat, comparison,
evaluation with scorers, the comparison report, and the checks an adapter passes before it loads.
"""

from .compare import Comparison, ComparisonStopped
from .evaluate import Evaluation
from .generate import GenerationSettings

__all__ = ["Comparison", "ComparisonStopped", "Evaluation", "GenerationSettings"]
